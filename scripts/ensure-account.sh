#!/bin/sh
# Started as root, the gateway runs smtpd and the portal as the unprivileged account of `user:`
# (default postern, Postfix's mail_owner) and refuses to start without it. `npm start` and
# `npm test` make the default account when run as root and it is missing (idempotent; nothing to
# do when not root: then no role drops privileges). Another `user:` is the admin's to create.
set -eu
[ "$(id -u)" = 0 ] || exit 0
getent passwd postern >/dev/null 2>&1 && exit 0
echo "postern: creating the system account postern (smtpd and the portal run as it)" >&2
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group postern
