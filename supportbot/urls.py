from django.conf import settings
from django.contrib import admin
from django.urls import path, re_path
from django.views.static import serve

from chat import api as chat_api
from chat import i18n as chat_i18n
from chat import views as chat_views
from chat import widget_views

urlpatterns = [
    path("", chat_views.chat_page, name="chat"),
    path("healthz", chat_views.health, name="health"),
    path("jsi18n/<str:lang>.js", chat_i18n.javascript_catalog, name="jsi18n"),
    path("metrics", chat_views.metrics_view, name="metrics"),
    path("staff/live/", chat_views.staff_live, name="staff-live"),
    path("admin/", admin.site.urls),
    path("widget/<str:public_key>/", widget_views.widget_page, name="widget"),
    path("demo/store/", widget_views.demo_store, name="demo-store"),
    path("demo/store/<slug:handle>/", widget_views.demo_product, name="demo-product"),
    path("api/conversations/<uuid:conversation_id>/attachments", chat_api.attachment_create, name="attachments"),
    path(
        "api/conversations/<uuid:conversation_id>/attachments/<uuid:attachment_id>",
        chat_api.attachment_detail,
        name="attachment",
    ),
    path(
        "api/conversations/<uuid:conversation_id>/attachments/<uuid:attachment_id>/<str:variant>",
        chat_api.attachment_file,
        name="attachment-variant",
    ),
]

if settings.SERVE_MEDIA:
    # Catalog images and uploads; a production proxy serves MEDIA_ROOT itself (SERVE_MEDIA=false).
    urlpatterns.append(re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}))
