#!/usr/bin/python3
"""The ECM's python engine: one Python interpreter session served over TCP.

Started by the ECM's `python` launcher plugin (plugins/python/python_launcher.cpp); Python 3
standard library only.

Socket: the listening socket the ECM bound for port `main`, inherited as fd 3 the systemd way
(LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID == our pid). Without one (run by hand, or a reserved
port) it binds 127.0.0.1:$ECM_PORT_main itself.

Protocol: UTF-8 lines; one answer line per request line, in order.
    ping                 -> pong
    an expression        -> repr() of its value            (1+2 -> 3)
    a statement          -> None                           (x = 5, import math)
    anything that raises -> error: <Type>: <message>
Newlines inside an answer are escaped (\\n), so an answer is always one line. Every connection
shares one namespace (one session), and requests run one at a time.

Life: runs `--init FILE` (the request's `code`) first; then reports Unlock with its address
through `$ECM_CTL callback`, heartbeats every $ECM_HEARTBEAT_INTERVAL (default 10s), logs to
stdout, and on SIGTERM (or SIGINT) closes its sockets, logs "stopped" and exits 0.
"""

import argparse
import builtins
import os
import platform
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

MAX_LINE = 1 << 20  # a longer request line closes the connection: a runaway client, not a request
DEFAULT_HEARTBEAT = 10.0  # seconds
CTL_TIMEOUT = 30.0  # seconds an `ecmctl callback` may take
STOP_JOIN = 2.0  # seconds given to connection threads to finish on stop

_log_lock = threading.Lock()


def log(message, stream=None):
    stream = stream or sys.stdout
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    with _log_lock:
        stream.write(f"{stamp} [python-engine] {message}\n")
        stream.flush()


def fatal(message):
    """Fails the engine: stderr reaches the engine's failure_reason."""
    log(f"error: {message}", sys.stderr)
    sys.exit(1)


class Stopped(BaseException):
    """SIGTERM while the init code runs: unwinds it (BaseException: `except Exception` lets it by)."""


def parse_interval(text):
    """'10', '10s', '500ms', '2m' -> seconds (float, > 0); ValueError otherwise."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m)?\s*", text)
    if not m:
        raise ValueError(text)
    value = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]
    if value <= 0:
        raise ValueError(text)
    return value


def take_listener():
    """The socket for port `main`, and where it came from (for the log)."""
    fds = os.environ.pop("LISTEN_FDS", None)
    pid = os.environ.pop("LISTEN_PID", None)
    names = os.environ.pop("LISTEN_FDNAMES", "")
    # Ours only if LISTEN_PID names us: the variables may have been inherited from a parent.
    if fds is not None and pid == str(os.getpid()):
        try:
            count = int(fds)
        except ValueError:
            fatal(f"LISTEN_FDS={fds!r} is not a number")
        name_list = names.split(":") if names else []
        index = name_list.index("main") if "main" in name_list else 0
        if index < count:
            fd = 3 + index
            sock = socket.socket(fileno=fd)
            # Code run in the session must not hand our port on to the programs it starts.
            os.set_inheritable(fd, False)
            return sock, f"inherited fd {fd}"
    port = os.environ.get("ECM_PORT_main")
    if not port:
        fatal("no listening socket: neither LISTEN_FDS (for this pid) nor ECM_PORT_main is set")
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", int(port)))
        sock.listen(64)
    except (OSError, ValueError) as e:
        fatal(f"cannot listen on 127.0.0.1:{port}: {e}")
    return sock, f"bound 127.0.0.1:{port}"


def service_address(sock):
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()  # listening everywhere: name the machine, not the wildcard
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Interpreter:
    """One session: a namespace shared by every connection, one request at a time."""

    def __init__(self):
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        self.lock = threading.Lock()

    def run_file(self, path):
        with open(path, encoding="utf-8") as f:
            source = f.read()
        exec(compile(source, path, "exec"), self.namespace)

    def answer(self, line):
        if line == "ping":
            return "pong"
        with self.lock:
            try:
                try:
                    code = compile(line, "<request>", "eval")
                except SyntaxError:
                    code = compile(line, "<request>", "exec")
                text = repr(eval(code, self.namespace))
            # Whatever the request raises (exit() too) is its answer, not the engine's end.
            except BaseException as e:  # noqa: B036
                text = f"error: {type(e).__name__}: {e}"
        return text.replace("\r", "\\r").replace("\n", "\\n")


class Server:
    def __init__(self, listener, interpreter):
        self.listener = listener
        self.interpreter = interpreter
        self.clients = set()
        self.threads = []
        self.lock = threading.Lock()

    def accept(self):
        try:
            conn, peer = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(True)
        with self.lock:
            self.clients.add(conn)
            self.threads = [t for t in self.threads if t.is_alive()]
            t = threading.Thread(target=self.serve, args=(conn, peer), daemon=True)
            self.threads.append(t)
        t.start()

    def serve(self, conn, peer):
        who = f"{peer[0]}:{peer[1]}"
        log(f"connection from {who}")
        try:
            with conn, conn.makefile("rb") as reader:
                while True:
                    raw = reader.readline(MAX_LINE + 1)
                    if not raw:
                        break
                    if len(raw) > MAX_LINE:
                        conn.sendall(b"error: ValueError: request line longer than 1 MiB\n")
                        break
                    line = raw.decode("utf-8", errors="replace").strip()
                    if not line:
                        continue
                    answer = self.interpreter.answer(line)
                    conn.sendall(answer.encode("utf-8", errors="backslashreplace") + b"\n")
        except OSError as e:
            log(f"connection from {who}: {e}")
        finally:
            with self.lock:
                self.clients.discard(conn)
        log(f"connection from {who} closed")

    def close(self):
        """Closes the port and ends every connection; True if every connection thread ended."""
        self.listener.close()
        with self.lock:
            clients = list(self.clients)
            threads = list(self.threads)
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes its thread; the thread closes it
            except OSError:
                pass
        deadline = time.monotonic() + STOP_JOIN
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)


def ctl(args):
    """Runs `$ECM_CTL callback ARGS`: (exit status, stdout, stderr)."""
    try:
        r = subprocess.run(
            [os.environ["ECM_CTL"], "callback", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CTL_TIMEOUT,
        )
        return r.returncode, r.stdout.strip(), r.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, "", str(e)


def report_unlock(address, message, stop):
    # 3: ecmctl could not reach the ECM (busy, restarting): worth a few tries. Anything else (a
    # refused token, a usage error) will not get better.
    for attempt in range(1, 6):
        status, out, err = ctl(["--status", "Unlock", "--address", address, "--message", message])
        if status == 0:
            log(f"{out} (Unlock, {address})")
            return
        if stop.is_set():
            return
        if status != 3 or attempt == 5:
            fatal(f"cannot report Unlock (ecmctl exit {status}): {err}")
        log(f"cannot reach the ECM yet (attempt {attempt}): {err}", sys.stderr)
        stop.wait(0.5 * attempt)


def heartbeats(interval, stop):
    while not stop.wait(interval):
        status, _, err = ctl(["--heartbeat"])
        if status != 0 and not stop.is_set():
            log(f"heartbeat failed (ecmctl exit {status}): {err}", sys.stderr)


def main():
    parser = argparse.ArgumentParser(description="The ECM's python engine.")
    parser.add_argument("--init", metavar="FILE", help="Python source to run before serving")
    args = parser.parse_args()

    try:
        interval = parse_interval(os.environ.get("ECM_HEARTBEAT_INTERVAL", "") or "10s")
    except ValueError:
        fatal(f"ECM_HEARTBEAT_INTERVAL={os.environ['ECM_HEARTBEAT_INTERVAL']!r} is not an "
              "interval such as 10, 10s or 500ms")
    if not os.environ.get("ECM_CTL"):
        fatal("ECM_CTL is not set: this program is started by the ECM's python plugin")

    stop = threading.Event()
    raise_on_stop = True  # while the init code runs; afterwards the main loop checks `stop`
    caught = []

    def on_signal(signum, frame):
        caught.append(signal.Signals(signum).name)
        stop.set()
        if raise_on_stop:
            raise Stopped()

    # The wakeup fd ends the selector's wait as soon as a signal arrives.
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    version = platform.python_version()
    listener = None
    interpreter = Interpreter()
    try:
        listener, origin = take_listener()
        address = service_address(listener)
        log(f"python {version} engine {os.environ.get('ECM_ENGINE_ID', '-')} pid {os.getpid()}, "
            f"listening on {address} ({origin})")
        if args.init:
            log(f"running init code {args.init}")
            started = time.monotonic()
            try:
                interpreter.run_file(args.init)
            except Stopped:
                raise
            except BaseException:  # noqa: B036: the init code failing fails the engine
                log("init code failed:\n" + traceback.format_exc().rstrip(), sys.stderr)
                fatal(f"init code {args.init} failed")
            log(f"init code done in {time.monotonic() - started:.3f}s")
        raise_on_stop = False  # inside the try: a signal just before it is still caught here
    except Stopped:
        if listener is not None:
            listener.close()
        log(f"stopped ({caught[0]} before ready)")
        return 0

    server = Server(listener, interpreter)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "wake")

    # Clients connecting before the report wait in the listen backlog: nothing is lost.
    if not stop.is_set():
        report_unlock(address, f"python {version} ready", stop)
    beat = threading.Thread(target=heartbeats, args=(interval, stop), daemon=True)
    beat.start()
    log(f"ready; heartbeat every {interval:g}s")

    while not stop.is_set():
        for key, _ in selector.select():
            if key.data == "wake":
                try:
                    while wake_r.recv(256):
                        pass
                except BlockingIOError:
                    pass
            elif not stop.is_set():
                server.accept()

    log(f"stopping ({caught[0] if caught else 'stop'})")
    signal.set_wakeup_fd(-1)
    selector.close()
    all_ended = server.close()
    beat.join(STOP_JOIN)
    if not all_ended:
        # A request still running (a long computation) cannot be interrupted from another thread.
        # Exit without the interpreter's shutdown: a daemon thread still printing can hang its
        # final flush of stdout, and stop asks for an exit now.
        log("stopped (abandoning requests still running)")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
