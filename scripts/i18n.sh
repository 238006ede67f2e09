#!/usr/bin/env bash
# Translations of the shopper's chat (English source, German and Spanish catalogs in locale/).
#
#   scripts/i18n.sh            collect the marked strings into the .po files, then compile them
#   scripts/i18n.sh --compile  compile only (after editing translations in a .po)
#
# Collecting (makemessages) writes locale/<lang>/LC_MESSAGES/django.po (Python code and
# templates: gettext, {% translate %}) and djangojs.po (static/ JavaScript: gettext, ngettext,
# pgettext). New strings arrive with an empty msgstr; a changed string may arrive "#, fuzzy" with
# msgmerge's guess from its old version. Translate those (for a fuzzy entry: check the guess and
# delete the flag), keep every %(name)s placeholder, then run the script again, which compiles
# the .mo files Django reads. Running it twice changes nothing.
#
# tests/chat/test_i18n.py fails while an entry is untranslated or fuzzy, a placeholder is lost,
# or a .mo is older than its .po. The .mo files are committed, so a machine without GNU gettext
# can run the app; this script needs it (Debian: gettext) and installs it when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
PY=.venv/bin/python
LANGS=(de es)

command -v msgfmt >/dev/null && command -v xgettext >/dev/null || apt_install gettext
[ -x "$PY" ] || die "no .venv: run scripts/bootstrap.sh first"

# Only the app's own sources: not the virtualenv, runtime data, tests, benchmarks or vendored
# code. Staff pages stay English, and are left out so their strings need no translation.
IGNORE=(
  --ignore=.venv --ignore=var --ignore=tests --ignore=bench --ignore=deploy --ignore=node_modules
  --ignore=static/vendor --ignore=static/staff --ignore=static/admin-chat
  --ignore=templates/staff --ignore=templates/admin
)
LANG_ARGS=()
for lang in "${LANGS[@]}"; do LANG_ARGS+=(-l "$lang"); done

# Makemessages must not see a developer's .env (or need a database) to import the settings.
export SUPPORTBOT_ENV_FILE=/dev/null

if [ "${1:-}" != "--compile" ]; then
  # File names without line numbers: an edit elsewhere in a file does not rewrite the catalogs.
  common=(--no-obsolete --add-location=file "${IGNORE[@]}" "${LANG_ARGS[@]}")
  say "makemessages: django (Python, templates)"
  "$PY" manage.py makemessages --domain django "${common[@]}"
  say "makemessages: djangojs (static/ JavaScript)"
  "$PY" manage.py makemessages --domain djangojs --extension js "${common[@]}"
fi

say "compilemessages"
"$PY" manage.py compilemessages "${LANG_ARGS[@]}" --ignore=.venv --ignore=var --ignore=node_modules

# What is left to translate, per file.
missing=0
for po in locale/*/LC_MESSAGES/*.po; do
  stats=$(msgfmt --statistics -o /dev/null "$po" 2>&1)
  case "$stats" in
    *untranslated* | *fuzzy*) echo "  $po: $stats"; missing=1 ;;
  esac
done
if [ "$missing" = 1 ]; then
  say "translate the entries above (empty or fuzzy), then run scripts/i18n.sh again"
else
  say "every catalog is fully translated"
fi
