"""Requests that arrive together are classified together.

Sixteen clients sending one tweet each should cost about one batch of sixteen, not sixteen
single passes. The batcher collects what arrives within ``window_ms`` (up to ``max_texts``
texts), runs the predictor once in its own worker thread (off the event loop, one batch at
a time), and hands each request its own slice of the answers.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable


class MicroBatcher:
    def __init__(self, predict: Callable[[list[str]], list[dict]], window_ms: float = 5.0, max_texts: int = 64) -> None:
        self.predict, self.window, self.max_texts = predict, window_ms / 1000.0, max_texts
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self.batches = 0  # how many predictor calls served how many requests: for tests and stats
        self.requests = 0

    async def submit(self, texts: list[str]) -> list[dict]:
        if self.worker is None:
            self.queue = asyncio.Queue()
            self.worker = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self.queue.get()]
            count = len(pending[0][0])
            deadline = loop.time() + self.window
            while count < self.max_texts:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                pending.append(item)
                count += len(item[0])
            texts = [t for request, _ in pending for t in request]
            try:
                results = await loop.run_in_executor(self.executor, self.predict, texts)
            except Exception as err:  # one failed batch fails its own requests, never the worker
                for _, future in pending:
                    if not future.done():
                        future.set_exception(err)
                continue
            self.batches += 1
            self.requests += len(pending)
            start = 0
            for request, future in pending:
                if not future.done():
                    future.set_result(results[start:start + len(request)])
                start += len(request)

    async def close(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker = None
        self.executor.shutdown(wait=False)
