"""An Envoy rate-limit service on 127.0.0.1: `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` over gRPC.

It speaks the proto Beam ships (apache_beam/io/components/rate_limit_pb2), as Envoy's
ratelimit server does: each request names a domain and descriptors; every descriptor is
counted in a fixed window of `window` seconds, and once one is over `limit` the answer is
OVER_LIMIT with the time until the window resets.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime
import threading
import time

import grpc
from apache_beam.io.components import rate_limit_pb2
from google.protobuf import duration_pb2

Response = rate_limit_pb2.RateLimitResponse


class FakeRateLimitService:
    def __init__(self, limit: int, window: float):
        self.limit = limit
        self.window = window
        self.hits = collections.Counter()  # (domain, descriptor, window index) → hits asked
        self.granted = collections.Counter()  # (domain, descriptor, window index) → hits allowed
        self.lock = threading.Lock()
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "envoy.service.ratelimit.v3.RateLimitService",
                    {
                        "ShouldRateLimit": grpc.unary_unary_rpc_method_handler(
                            self.should_rate_limit, rate_limit_pb2.RateLimitRequest.FromString, Response.SerializeToString
                        ),
                    },
                )
            ]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.stop(None)

    def should_rate_limit(self, request, context):
        now = time.time()
        index = int(now // self.window)
        until_reset = (index + 1) * self.window - now
        statuses = []
        with self.lock:
            keys = [(request.domain, tuple((e.key, e.value) for e in d.entries), index) for d in request.descriptors]
            over = [self.granted[key] + request.hits_addend > self.limit for key in keys]
            for key in keys:
                self.hits[key] += request.hits_addend
                if not any(over):
                    self.granted[key] += request.hits_addend
        for is_over in over:
            code = Response.OVER_LIMIT if is_over else Response.OK
            duration = duration_pb2.Duration()
            duration.FromTimedelta(datetime.timedelta(seconds=until_reset))
            statuses.append(Response.DescriptorStatus(code=code, duration_until_reset=duration))
        return Response(overall_code=Response.OVER_LIMIT if any(over) else Response.OK, statuses=statuses)
