#!/bin/sh
. "$(dirname "$0")/lib.sh"
ok "binary runs" "$LADDERD" --version
done_testing
