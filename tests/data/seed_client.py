# The seed's client, for conn's tests: python seed_client.py HOST PORT
# Connects with authkey b'secret password', prints the object, the bytes message, and the
# result of recv_bytes_into into a 5-element i32 array. Exits by itself after 60 seconds.
import signal
import sys
from array import array

from multiprocessing.connection import Client

signal.alarm(60)
conn = Client((sys.argv[1], int(sys.argv[2])), authkey=b'secret password')
print(repr(conn.recv()))
print(repr(conn.recv_bytes()))
arr = array('i', [0, 0, 0, 0, 0])
print(conn.recv_bytes_into(arr))
print(arr)
conn.close()
