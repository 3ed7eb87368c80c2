"""Stand-in for hexenvpn-bot: the admin bot whose container ships vless-add-user/vless-del-user.

Telegram cannot be reached from the lab, so the bot only says it is up and waits; users are
added and removed with the two scripts, as the runbook says (section 3).
"""

import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("hexenvpn-bot: admin panel up (Telegram stand-in: no polling in the lab)", flush=True)
while True:
    time.sleep(3600)
