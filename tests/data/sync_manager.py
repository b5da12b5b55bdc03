# A Python SyncManager for the sync_manager example: prints its port, serves until stdin closes,
# then prints what the dict and queue the Rust side created hold, as Python sees them.
import sys
from multiprocessing.managers import SyncManager

m = SyncManager(address=('127.0.0.1', 0), authkey=b'rust-test')
m.start()
print(m.address[1])
sys.stdout.flush()
sys.stdin.read()
m.shutdown()
print('shutdown')
