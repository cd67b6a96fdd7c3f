"""Files benchmark: upload and download throughput of a big file, and the server's peak RSS.

For each blob backend (a local folder; S3, served here by moto in server mode, as no MinIO
binary is available), it starts a fresh Lucky (SQLite) with `lucky serve`, then for a file of
SIZE MiB (random bytes, written to a temporary file first, so the client streams from disk):

- single: `POST /api/v1/files`, multipart, streamed from the file;
- chunked: `POST /api/v1/uploads`, then every 5 MiB chunk with `PUT .../chunks/{i}` (with its
  Content-MD5, PARALLEL in flight), then `complete` (which reassembles and checks the md5);
- download: `GET /api/v1/files/{id}/content`, streamed and discarded (hashed to check it).

MB/s are MiB of file per second of wall time, client and server on the same machine. The
server's RSS is VmRSS sampled every 20 ms; its peak is reported per phase and overall, next to
its RSS once started, so that "the RSS stays flat" is a figure, not a claim.

    .venv/bin/python bench/files_bench.py [--size-mib 256] [--backends local,s3] [--parallel 4]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.servers import LuckyInstance, Process  # noqa: E402

MIB = 1024 * 1024
CHUNK = 5 * MIB


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples a process's VmRSS every 20 ms in a thread; `peak()` since the last `reset()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self._peak = max(self._peak, rss_kib(self.pid))
            except OSError:
                return

    def reset(self) -> None:
        self._peak = rss_kib(self.pid)

    def peak(self) -> int:
        return max(self._peak, rss_kib(self.pid))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def moto_server() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start")
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def make_file(path: Path, size: int) -> str:
    digest = hashlib.md5()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


async def _file_chunks(path: Path, start: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
    with open(path, "rb") as source:
        source.seek(start)
        left = length if length is not None else os.path.getsize(path) - start
        while left > 0:
            block = source.read(min(MIB, left))
            if not block:
                return
            left -= len(block)
            yield block


async def run_backend(name: str, storage_url: str, path: Path, md5: str, size: int, parallel: int,
                      workdir: Path) -> dict[str, Any]:
    instance = LuckyInstance(workdir, "sqlite")
    server: Process | None = None
    try:
        server = instance.serve(LUCKY_STORAGE__URL=storage_url,
                                LUCKY_FILES__MAX_SINGLE_MB=str(size // MIB + 1),
                                LUCKY_FILES__MAX_UPLOAD_MB=str(size // MIB + 1))
        sampler = RssSampler(server.pid)
        started_rss = rss_kib(server.pid)
        result: dict[str, Any] = {"backend": name, "size_mib": size // MIB, "rss_started_mib": started_rss / 1024}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
        async with aiohttp.ClientSession(server.url, timeout=timeout) as http:
            async with http.post("/api/v1/auth/register", json={"username": "bench", "password": "bench password"}) as r:
                token = (await r.json())["access_token"]
            auth = {"Authorization": f"Bearer {token}"}

            async def timed(phase: str, work: Callable[[], Any]) -> Any:
                sampler.reset()
                began = time.perf_counter()
                value = await work()
                seconds = time.perf_counter() - began
                result[phase] = {"seconds": round(seconds, 2), "mib_per_s": round(size / MIB / seconds, 1),
                                 "peak_rss_mib": round(sampler.peak() / 1024, 1)}
                print(f"  {name:5} {phase:16} {size / MIB / seconds:8.1f} MiB/s  "
                      f"peak RSS {sampler.peak() / 1024:6.1f} MiB", flush=True)
                return value

            async def single() -> dict[str, Any]:
                form = aiohttp.FormData()
                form.add_field("file", _file_chunks(path), filename="big.bin",
                               content_type="application/octet-stream")
                async with http.post("/api/v1/files", data=form, headers=auth) as resp:
                    body = await resp.json()
                    assert resp.status == 201, body
                    assert body["md5"] == md5, body
                    return dict(body)

            async def chunked() -> dict[str, Any]:
                async with http.post("/api/v1/uploads", headers=auth,
                                     json={"name": "big2.bin", "size": size, "md5": md5, "chunk_size": CHUNK}) as r:
                    upload = await r.json()
                    assert r.status == 201, upload
                # The same content is stored already: skip the instant-upload challenge on
                # purpose, to measure the real transfer.
                uid, count = upload["upload_id"], upload["chunks"]
                queue: asyncio.Queue[int] = asyncio.Queue()
                for index in range(count):
                    queue.put_nowait(index)

                async def worker() -> None:
                    with open(path, "rb") as source:
                        while not queue.empty():
                            index = queue.get_nowait()
                            source.seek(index * CHUNK)
                            piece = source.read(CHUNK)
                            headers = {**auth, "Content-MD5": base64.b64encode(hashlib.md5(piece).digest()).decode(),
                                       "Content-Type": "application/octet-stream"}
                            async with http.put(f"/api/v1/uploads/{uid}/chunks/{index}", data=piece,
                                                headers=headers) as resp:
                                assert resp.status == 200, await resp.text()

                await asyncio.gather(*(worker() for _ in range(parallel)))
                async with http.post(f"/api/v1/uploads/{uid}/complete", json={}, headers=auth) as resp:
                    body = await resp.json()
                    assert resp.status == 201, body
                    return dict(body)

            async def download(file_id: str) -> None:
                digest = hashlib.md5()
                async with http.get(f"/api/v1/files/{file_id}/content", headers=auth) as resp:
                    assert resp.status == 200, await resp.text()
                    async for block in resp.content.iter_chunked(MIB):
                        digest.update(block)
                assert digest.hexdigest() == md5

            first = await timed("upload_single", single)
            second = await timed("upload_chunked", chunked)
            await timed("download", lambda: download(first["id"]))
            await timed("download_again", lambda: download(second["id"]))
        result["peak_rss_mib_overall"] = round(max(result[p]["peak_rss_mib"] for p in
                                                   ("upload_single", "upload_chunked", "download", "download_again")), 1)
        sampler.stop()
        return result
    finally:
        if server is not None:
            server.stop()
        instance.remove()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--backends", default="local,s3")
    parser.add_argument("--parallel", type=int, default=4, help="chunks in flight")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    size = args.size_mib * MIB
    results = []
    with tempfile.TemporaryDirectory(prefix="lucky-files-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "big.bin"
        md5 = make_file(path, size)
        for backend in args.backends.split(","):
            print(f"{backend}: {args.size_mib} MiB file", flush=True)
            if backend == "local":
                results.append(await run_backend("local", f"file://{workdir / 'blobs'}", path, md5, size,
                                                 args.parallel, workdir))
            elif backend == "s3":
                with moto_server() as endpoint:
                    url = f"s3://bench:benchsecret@{endpoint}/lucky-bench?secure=false"
                    results.append(await run_backend("s3", url, path, md5, size, args.parallel, workdir))
            else:
                raise SystemExit(f"unknown backend {backend!r}")
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
