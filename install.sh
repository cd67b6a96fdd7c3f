#!/usr/bin/env bash
# Install Lucky from this checkout into ./.venv (safe to run again: it reuses what is there).
#
#   ./install.sh          the server and the `lucky` command
#   ./install.sh --dev    also the test and development tools (pytest, mypy, build, ...)
#
# Set PYTHON to choose the interpreter (default: python3 if it is 3.11+, else python3.13,
# python3.12 or python3.11 from PATH).
# Everything comes from PyPI through pip; nothing else is downloaded.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

dev=0
for arg in "$@"; do
    case "$arg" in
        --dev) dev=1 ;;
        -h|--help)
            sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "install.sh: unknown option $arg (use --dev or --help)" >&2
            exit 2
            ;;
    esac
done

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# Is "$1" a Python of at least 3.11?
python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

if [[ -n "${PYTHON:-}" ]]; then
    command -v "$PYTHON" >/dev/null 2>&1 || die "PYTHON=$PYTHON is not a command"
    python_ok "$PYTHON" || die "Lucky needs Python 3.11 or newer; PYTHON=$PYTHON is $("$PYTHON" -V 2>&1)"
    python="$PYTHON"
else
    python=""
    for candidate in python3 python3.13 python3.12 python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            python="$candidate"
            break
        fi
    done
    if [[ -z "$python" ]]; then
        found="none"
        command -v python3 >/dev/null 2>&1 && found="$(python3 -V 2>&1)"
        die "Lucky needs Python 3.11 or newer (found: $found). Install it (Debian/Ubuntu: apt-get install python3.11 python3.11-venv), or point PYTHON at one."
    fi
fi

venv=.venv
if [[ -x "$venv/bin/python" ]] && python_ok "$venv/bin/python" && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    say "reusing $venv ($("$venv/bin/python" -V 2>&1))"
else
    if [[ -e "$venv" ]]; then
        say "$venv is broken or too old; recreating it"
        rm -rf "$venv"
    fi
    say "creating $venv with $python ($("$python" -V 2>&1))"
    "$python" -m venv "$venv" || die "could not create $venv; on Debian/Ubuntu install the venv module (apt-get install python3-venv) and run this again"
fi

target="."
what="Lucky"
if [[ $dev -eq 1 ]]; then
    target=".[dev]"
    what="Lucky with the dev tools"
fi
say "installing $what (editable; dependencies from PyPI)"
# --disable-pip-version-check: no nagging, and no extra request when offline-ish.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target" \
    || die "pip install failed (see above); is PyPI reachable?"

version="$("$venv/bin/lucky" --version)"
say "installed: $version"
cat <<EOF

Next steps:
  .venv/bin/lucky init --data-dir ./data     # config, secrets, database, first admin
  .venv/bin/lucky serve --data-dir ./data    # http://127.0.0.1:8080 until Ctrl-C
  .venv/bin/lucky --help                     # every command, each with an example
EOF
if [[ $dev -eq 1 ]]; then
    echo "  ./scripts/test                             # the whole test suite"
fi
