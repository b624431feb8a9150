"""AWS stand-ins for the EC2 provider's tests.

`moto_server()` runs moto's own EC2 server (a real HTTP endpoint, in a thread of this process)
on 127.0.0.1. `ec2_error_server(code)` answers every EC2 call with one recorded error answer
from `moto_fixtures/errors.json` — the errors moto never sends (quotas, throttling, refused
credentials), in the XML shape and HTTP status EC2 uses; given `upstream` (moto's URL) and
`actions`, it answers only those EC2 actions with the error and forwards every other request to
moto, so one call can fail in the middle of a real sequence. `spot_price_server(upstream)`
answers DescribeSpotPriceHistory with the recorded prices of `moto_fixtures/spot_price_history.json`
(moto prices every zone alike) and forwards the rest to moto. All yield the endpoint URL; point
boto3 at it with the standard `AWS_ENDPOINT_URL_EC2` environment variable (Route53, which moto's
server also serves, through `AWS_ENDPOINT_URL_ROUTE_53`).

moto lacks two things EC2 does: CreateImage tagging the image's snapshots (`TagSpecifications`
of type `snapshot`, which moto refuses with a 500), and an instance's SourceDestCheck being its
primary network interface's (moto changes only the instance's). The server started here is
taught both (see `_teach_moto`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

FIXTURES = Path(__file__).with_name("moto_fixtures")


@contextmanager
def moto_server() -> Iterator[str]:
    """A fresh moto server (empty account, default VPCs, moto's AMIs); yields its URL."""
    from moto.server import ThreadedMotoServer  # moto is a dev dependency only

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    _teach_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _teach_moto() -> None:
    """CreateImage applies `snapshot` tag specifications to the snapshots it makes, as EC2 does
    (moto raises NotImplementedError); an instance's SourceDestCheck is its primary network
    interface's, as on EC2 (moto keeps two values). Patched once per process: the server runs
    in-process."""
    _teach_source_dest_check()
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.create_image
    if getattr(original, "_orbis_snapshot_tags", False):
        return

    def create_image(
        self: Any,
        instance_id: str,
        name: str,
        description: str,
        tag_specifications: list[dict[str, Any]],
    ) -> Any:
        on_snapshots = [
            tag
            for spec in tag_specifications
            if spec.get("ResourceType") == "snapshot"
            for tag in spec.get("Tags") or []
        ]
        others = [s for s in tag_specifications if s.get("ResourceType") != "snapshot"]
        image = original(self, instance_id, name, description, others)
        for tag in on_snapshots:
            image.ebs_snapshot.add_tag(tag["Key"], tag["Value"])
        return image

    create_image._orbis_snapshot_tags = True  # type: ignore[attr-defined]
    AmiBackend.create_image = create_image  # type: ignore[method-assign]


def _teach_source_dest_check() -> None:
    from moto.ec2.models.instances import InstanceBackend

    original = InstanceBackend.modify_instance_attribute
    if getattr(original, "_orbis_source_dest_check", False):
        return

    def modify_instance_attribute(self: Any, instance_id: str, key: str, value: Any) -> Any:
        instance = original(self, instance_id, key, value)
        if key == "source_dest_check" and 0 in instance.nics:
            instance.nics[0].source_dest_check = instance.source_dest_check
        return instance

    modify_instance_attribute._orbis_source_dest_check = True  # type: ignore[attr-defined]
    InstanceBackend.modify_instance_attribute = modify_instance_attribute  # type: ignore[method-assign]


@dataclass
class ImageRuntime:
    """What moto's server cannot do: run a `PackageType=Image` function (its Invoke answers 500:
    it looks for a zip's code digest; running a zip needs a Docker engine with `busybox` and a
    docker-lambda runtime image pulled from a registry). `image_runtime()` stands in for the
    container only: moto still routes, authorises and answers the Invoke; `calls` records
    (function name, event) as the function received them; `answer(event)` is its output, and
    an exception it raises is the function's error (moto's `X-Amz-Function-Error`)."""

    answer: Callable[[Any], Any] = lambda event: {"statusCode": 200, "body": event}  # noqa: E731
    calls: list[tuple[str, Any]] = field(default_factory=list)


@contextmanager
def image_runtime(answer: Callable[[Any], Any] | None = None) -> Iterator[ImageRuntime]:
    """While open, Invoke of an image function on this process's moto servers runs `answer`
    (see ImageRuntime); zip functions are left to moto."""
    from moto.awslambda.models import LambdaFunction

    runtime = ImageRuntime()
    if answer is not None:
        runtime.answer = answer
    original = LambdaFunction.invoke

    def invoke(self: Any, body: str, request_headers: Any, response_headers: Any) -> Any:
        if self.package_type != "Image":
            return original(self, body, request_headers, response_headers)
        event = json.loads(body) if body else {}
        runtime.calls.append((self.function_name, event))
        try:
            result = runtime.answer(event)
        except Exception as exc:  # the function's own failure, as Lambda reports it
            response_headers["x-amz-function-error"] = "Unhandled"
            result = {"errorMessage": str(exc), "errorType": type(exc).__name__}
        return json.dumps(result).encode()

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    try:
        yield runtime
    finally:
        LambdaFunction.invoke = original  # type: ignore[method-assign]


def error_answers() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "errors.json").read_text())
    return data


# (status, content type, body) of an answer; None: forward the request to moto
Answer = tuple[int, str, bytes]


@contextmanager
def ec2_error_server(
    code: str, *, upstream: str | None = None, actions: Collection[str] = ()
) -> Iterator[str]:
    """A server answering with EC2's error `code` (every request, or with `upstream` only the
    EC2 `actions` named, the others going to `upstream`); yields its URL."""
    answers = error_answers()
    answer = answers["errors"][code]
    body = answers["body"].format(code=code, message=answer["message"]).encode()

    def respond(action: str, params: Mapping[str, list[str]]) -> Answer | None:
        if upstream and action not in actions:
            return None
        return answer["status"], "text/xml;charset=UTF-8", body

    with _ec2_server(respond, upstream) as url:
        yield url


def spot_price_history() -> dict[str, Any]:
    """The recorded DescribeSpotPriceHistory answer (boto3's shape)."""
    data = json.loads((FIXTURES / "spot_price_history.json").read_text())
    answer: dict[str, Any] = data["answer"]
    return answer


@contextmanager
def spot_price_server(upstream: str) -> Iterator[str]:
    """EC2 with recorded spot prices: DescribeSpotPriceHistory is answered from the fixture
    (filtered by instance type, product description and zone, as EC2 does), everything else by
    moto at `upstream`; yields its URL."""
    history = spot_price_history()["SpotPriceHistory"]
    fields = {"instanceType": "InstanceType", "productDescription": "ProductDescription",
              "spotPrice": "SpotPrice", "timestamp": "Timestamp",
              "availabilityZone": "AvailabilityZone"}  # fmt: skip

    def respond(action: str, params: Mapping[str, list[str]]) -> Answer | None:
        if action != "DescribeSpotPriceHistory":
            return None
        types = _listed(params, "InstanceType")
        products = _listed(params, "ProductDescription")
        zones = set(params.get("AvailabilityZone", []))
        for n in {k.split(".")[1] for k in params if re.fullmatch(r"Filter\.\d+\.Name", k)}:
            if params[f"Filter.{n}.Name"] == ["availability-zone"]:
                zones |= set(_listed(params, f"Filter.{n}.Value"))
        items = "".join(
            "<item>"
            + "".join(f"<{tag}>{escape(str(entry[key]))}</{tag}>" for tag, key in fields.items())
            + "</item>"
            for entry in history
            if (not types or entry["InstanceType"] in types)
            and (not products or entry["ProductDescription"] in products)
            and (not zones or entry["AvailabilityZone"] in zones)
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeSpotPriceHistoryResponse '
            'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>'
            "59dbff89-35bd-4eac-99ed-be587example</requestId>"
            f"<spotPriceHistorySet>{items}</spotPriceHistorySet><nextToken/>"
            "</DescribeSpotPriceHistoryResponse>"
        )
        return 200, "text/xml;charset=UTF-8", body.encode()

    with _ec2_server(respond, upstream) as url:
        yield url


@contextmanager
def signing_keys_server(upstream: str) -> Iterator[tuple[str, list[str]]]:
    """EC2 forwarded to moto at `upstream`, noting the access key id that signed each request
    (from its SigV4 `Authorization` header); yields the URL and that growing list."""
    seen: list[str] = []

    def note(headers: Mapping[str, str]) -> None:
        match = re.search(r"Credential=([^/,\s]+)", headers.get("Authorization", ""))
        seen.append(match.group(1) if match else "(unsigned)")

    with _ec2_server(lambda action, params: None, upstream, on_request=note) as url:
        yield url, seen


def _listed(params: Mapping[str, list[str]], name: str) -> list[str]:
    """The values of an EC2 query list parameter (`Name.1`, `Name.2`, ...)."""
    return [v for k, vs in params.items() if re.fullmatch(rf"{name}\.\d+", k) for v in vs]


@contextmanager
def _ec2_server(
    respond: Callable[[str, Mapping[str, list[str]]], Answer | None],
    upstream: str | None,
    on_request: Callable[[Mapping[str, str]], None] | None = None,
) -> Iterator[str]:
    """An EC2 query endpoint: `respond(action, params)` answers a request, or None sends it on
    to `upstream` (moto), whose answers, errors included, pass through."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            request = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if on_request is not None:
                on_request(dict(self.headers.items()))
            params = parse_qs(request.decode())
            answer = respond(params.get("Action", [""])[0], params)
            if answer is None and upstream:
                return self._forward(upstream, request)
            if answer is None:
                answer = 400, "text/plain", b"no answer recorded"
            self._answer(*answer)

        def _forward(self, url: str, request: bytes) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            forward = urllib.request.Request(url + self.path, request, headers)
            try:
                with urllib.request.urlopen(forward, timeout=30) as got:  # noqa: S310 - local
                    status, data, kind = got.status, got.read(), got.headers["Content-Type"]
            except urllib.error.HTTPError as err:  # moto's own error answers pass through
                status, data, kind = err.code, err.read(), err.headers["Content-Type"]
            self._answer(status, kind or "text/xml", data)

        def _answer(self, status: int, kind: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
