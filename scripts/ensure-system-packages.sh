#!/bin/sh
# Runs before `npm test` (the `pretest` script), so that `npm ci && npm test`
# passes on a fresh Debian machine by itself. Tests start real servers and a
# real browser, which npm cannot install:
#   chromium      the browser test (playwright-core never downloads one)
#   redis-server  the Redis backplane tests
#   nats-server   the NATS backplane tests
#   valgrind      `npm run bench:instructions` (callgrind), which .ci/run runs after the tests
# Missing ones are installed with apt-get when we are root; otherwise this
# stops with the command to run.
set -eu

# Each entry: the program tests run, then the Debian package that provides it.
missing=''
need () {
  # CHROMIUM_PATH points the browser test elsewhere; honour it here too.
  if [ "$1" = chromium ] && [ -n "${CHROMIUM_PATH:-}" ]; then
    [ -x "$CHROMIUM_PATH" ] && return 0
  fi
  # nats-server lands in /usr/sbin, which is not on every user's PATH.
  if command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; then
    return 0
  fi
  missing="$missing $2"
}
need chromium chromium
need redis-server redis-server
need nats-server nats-server
need valgrind valgrind

[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages the tests need:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq $missing >/dev/null
  exit 0
fi

echo "The tests need these system packages:$missing" >&2
echo "Install them, then run npm test again:" >&2
echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
exit 1
