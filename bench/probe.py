"""Probe for the longest pause a client sees: usage `probe.py <port> <stop-file>`.

Sends `GET probe` every millisecond on one connection while <stop-file> exists, then
prints the longest round trip (ms), the 99.9th percentile (ms) and the number sent.
Used by bench/persistence.sh and bench/snapshot-cell.sh.
"""
import socket, sys, time, os
port, stop = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = b"*2\r\n$3\r\nGET\r\n$5\r\nprobe\r\n"
lat = []
while os.path.exists(stop):
    t = time.perf_counter(); s.sendall(req)
    buf = b""
    while not buf.endswith(b"\r\n"): buf += s.recv(64)
    lat.append(time.perf_counter() - t); time.sleep(0.001)
lat.sort()
print(f"{lat[-1]*1000:.2f} {lat[int(len(lat)*0.999)]*1000:.2f} {len(lat)}")
