#!/usr/bin/env bash
# The `${deploy}` of tools/examples/replace-backend-plan.json for a lab: the
# plan's deployment verbs done by `ringwatch lab` on the lab in
# $RINGWATCH_LAB_DIR, with the ringwatch in $RINGWATCH.
#
# Usage: lab-deploy.sh add-backend|drain-backend|remove-backend NAME
#        lab-deploy.sh roll-proxies
set -euo pipefail
verb=$1
shift
case $verb in
  add-backend | drain-backend | remove-backend)
    exec "$RINGWATCH" lab "$verb" --dir "$RINGWATCH_LAB_DIR" --backend "$1" ;;
  roll-proxies)
    exec "$RINGWATCH" lab roll-proxies --dir "$RINGWATCH_LAB_DIR" --pause 0.5 ;;
  *)
    echo "lab-deploy.sh: unknown verb $verb" >&2
    exit 2 ;;
esac
