"""Entry point for plain mitmproxy: `mitmdump -s addon/script.py --set runtap_db=FILE`.

Needs runtap installed in mitmproxy's Python environment (the addon imports its packages).
"""

from runtap.addon.recorder import Recorder

addons = [Recorder()]
