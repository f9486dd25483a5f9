#!/bin/sh
# The image's entry point: the first argument names the part to run, the rest go to it.
# `exec` leaves Node as the only process under the init (compose `init: true`), so it gets SIGTERM.
# Node's flags and environment come from the files every other launcher reads: the services'
# (libs/process/service-node-flags, service-env), the command line's (tools/cli/bin/node-flags).
set -eu
# The services' environment (libs/process/service-env): each setting the container does not make.
service_env() {
  while IFS= read -r setting; do
    [ -n "$setting" ] || continue
    printenv "${setting%%=*}" > /dev/null || export "$setting"
  done < /app/libs/process/service-env
}
part=${1:-help}
[ $# -gt 0 ] && shift
case $part in
  # shellcheck disable=SC2046
  agent | scheduler | catalog | storage-gateway)
    service_env
    exec node $(cat /app/libs/process/service-node-flags) "/app/services/$part/src/main.ts" "$@"
    ;;
  # shellcheck disable=SC2046
  volback) exec node $(cat /app/tools/cli/bin/node-flags) /app/tools/cli/src/main.ts "$@" ;;
  help | --help | -h)
    echo 'usage: <image> agent | storage-gateway | scheduler | catalog | volback <cli arguments> | <command>'
    ;;
  *) exec "$part" "$@" ;;
esac
