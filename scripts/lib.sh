# Shared helpers for the project's scripts (sourced, not run).

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# apt_install PKG... : install Debian packages when we are root; otherwise say what to run.
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    die "missing system packages: $*. Install them with: sudo apt-get install -y $*"
  fi
  command -v apt-get >/dev/null || die "missing system packages ($*) and no apt-get to install them"
  say "installing system packages: $*"
  if [ -z "${_APT_UPDATED:-}" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
