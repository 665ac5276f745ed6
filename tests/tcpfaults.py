"""A TCP proxy on loopback that can cut or stall the traffic it forwards.

Used by the fault tests to put real network faults between the drill and a real server
(PostgreSQL speaks its own protocol, so the proxy works at the TCP level only).
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<upstream_port>.

    * ``cut()`` closes every open connection (both sides), like a dropped network path;
      new connections are still accepted.
    * ``cut_after(n)`` cuts every open connection as soon as ``n`` bytes in total have
      passed since the call (once, or every ``n`` bytes with ``repeat``).
    * ``stall()`` / ``resume()`` / ``stall_after(n)`` stop and restart forwarding without
      closing anything.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        self.cuts = 0
        self.connections = 0
        # kind -> (bytes left, server-to-client?, bytes to re-arm with or 0)
        self._budgets: dict[str, tuple[int, bool, int]] = {}
        self.bytes_down = 0
        self.bytes_up = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, down: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                with self._lock:
                    if down:
                        self.bytes_down += len(data)
                    else:
                        self.bytes_up += len(data)
                    cut = self._spend("cut", down, len(data))
                    stall = self._spend("stall", down, len(data))
                if cut:
                    self.cut()
                    return
                if stall:
                    self.stall()
                    self._flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _spend(self, kind: str, down: bool, n: int) -> bool:
        """Count ``n`` bytes against a ``cut_after``/``stall_after`` budget; True when spent."""
        budget = self._budgets.get(kind)
        if budget is None or budget[1] != down:
            return False
        left = budget[0] - n
        if left > 0:
            self._budgets[kind] = (left, down, budget[2])
            return False
        # Spent: fire, and re-arm when the fault repeats.
        if budget[2]:
            self._budgets[kind] = (budget[2], down, budget[2])
        else:
            del self._budgets[kind]
        return True

    def cut(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
            self.cuts += 1
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def cut_after(self, nbytes: int, *, down: bool = True, repeat: bool = False) -> None:
        """Cut every connection once ``nbytes`` have passed (server to client by default);
        with ``repeat``, again after every further ``nbytes``."""
        with self._lock:
            self._budgets["cut"] = (nbytes, down, nbytes if repeat else 0)

    def stall_after(self, nbytes: int, *, down: bool = True) -> None:
        """Stop forwarding (without closing anything) once ``nbytes`` have passed."""
        with self._lock:
            self._budgets["stall"] = (nbytes, down, 0)

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.resume()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
