#!/bin/sh
# The image's entry point: the first argument names the part to run, the rest go to it.
# `exec` leaves Node as the only process under the init (compose `init: true`), so it gets SIGTERM.
set -eu
part=${1:-help}
[ $# -gt 0 ] && shift
case $part in
  agent | scheduler | catalog | storage-gateway) exec node "/app/services/$part/src/main.ts" "$@" ;;
  volback) exec node /app/tools/cli/src/main.ts "$@" ;;
  help | --help | -h)
    echo 'usage: <image> agent | storage-gateway | scheduler | catalog | volback <cli arguments> | <command>'
    ;;
  *) exec "$part" "$@" ;;
esac
