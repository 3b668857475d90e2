#!/bin/sh
# Installs the Debian packages the interop tests drive as independent peers, only when missing.
# Idempotent and quick when everything is present. Needs root (or passwordless sudo) to install;
# otherwise it lists what is missing and the tests that need it will fail with a clear message.
set -eu

# command -> Debian package (chromium: the portal's and admin console's pages, driven by playwright-core;
# promtool: checks the admin role's /metrics; oathtool: the independent TOTP for admin log-ins)
NEEDS="swaks:swaks smtp-sink:postfix smtp-source:postfix openssl:openssl softhsm2-util:softhsm2 gpg:gnupg gpgsm:gpgsm slapd:slapd ldapadd:ldap-utils qpdf:qpdf pdftotext:poppler-utils pdfdetach:poppler-utils pdftoppm:poppler-utils mutool:mupdf-tools chromium:chromium promtool:prometheus oathtool:oathtool"

missing=""
for pair in $NEEDS; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
  fi
done

# swaks speaks STARTTLS only with these Perl modules (recommended, not required, by its package).
for pair in Net::SSLeay=libnet-ssleay-perl IO::Socket::SSL=libio-socket-ssl-perl; do
  mod=${pair%%=*}; pkg=${pair#*=}
  perl -M"$mod" -e1 >/dev/null 2>&1 || missing="$missing $pkg"
done

# PDF mail: the fonts it embeds where the system has them (DejaVu for Latin, Greek and Cyrillic;
# Droid Sans Fallback for CJK), checked by file since they have no command.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$missing fonts-dejavu-core"
[ -f /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ] || missing="$missing fonts-droid-fallback"
# Droid Sans Fallback has no Hangul: Nanum Gothic draws Korean.
[ -f /usr/share/fonts/truetype/nanum/NanumGothic.ttf ] || missing="$missing fonts-nanum"

# PostgreSQL (the cluster backend, issue 19): the tests initdb a private server; its programs live
# outside PATH, under /usr/lib/postgresql/<major>/bin.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"

# gpg-wks-client (the WKD oracle) lives outside PATH, in GnuPG's libexec directory.
[ -x /usr/lib/gnupg/gpg-wks-client ] || [ -x /usr/libexec/gpg-wks-client ] || missing="$missing gpg-wks-client"

# The unprivileged account the gateway drops smtpd and the portal to when started as root.
sh "$(dirname "$0")/ensure-account.sh"

[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "setup-test-deps: missing Debian packages:$missing (run as root to install them)" >&2
  exit 1
fi

echo "setup-test-deps: installing$missing" >&2
# Postfix must not ask questions nor start a system MTA: the tests only use smtp-sink/smtp-source.
echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections 2>/dev/null || true
# slapd must not configure (nor start) a system directory: the tests run their own on loopback.
echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
