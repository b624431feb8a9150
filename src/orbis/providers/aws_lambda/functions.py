"""AWS Lambda functions of package type Image, made with the user's own credentials (boto3).

`lambda_definition` (pure) turns a function into the Lambda settings Orbis sends: the ECR image
(required: Lambda runs images from ECR only; the region is the ECR registry's), memory in MB,
timeout (IM/SCAR's default 900 s), environment variables, and optionally an API Gateway
(`api_gateway: true`, an Orbis property). `LambdaClient` creates, updates (configuration, then
code when the image changed), reads, invokes and deletes them; the session never falls back to
the server's own AWS identity. boto3 honours AWS_ENDPOINT_URL_LAMBDA (and _API_GATEWAY, _IAM)
for another endpoint, as the EC2 provider does for EC2.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from orbis.model.infrastructure import ServerlessFunction

ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+)(:[\w.-]+|@sha256:[0-9a-f]{64})?$"
)
DEFAULT_TIMEOUT = 900  # seconds: what IM (through SCAR) gives a function
DEFAULT_MEMORY_MB = 512
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TAG = "orbis.infrastructure"


class LambdaError(Exception):
    """Lambda refused or failed; the message has AWS's error code and text."""


@dataclass(frozen=True)
class LambdaTarget:
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    role: str = ""  # the execution role's ARN (the auth line's `role`)
    session_token: str | None = field(default=None, repr=False)


def ecr_region(image: str | None) -> str | None:
    """The region of an ECR image reference (`docker://` allowed); None if it is not one."""
    found = ECR_IMAGE.match((image or "").removeprefix("docker://"))
    return found["region"] if found else None


def lambda_definition(fn: ServerlessFunction, infra_id: str) -> dict[str, Any]:
    """The settings of `fn` as a Lambda function; LambdaError naming the field if it cannot be."""
    image = (fn.image or "").removeprefix("docker://")
    region = ecr_region(image)
    if region is None:
        raise LambdaError(f"function '{fn.name}': image '{fn.image}' is not in ECR "
                          "(<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag]); "
                          "Lambda runs container images from ECR only")  # fmt: skip
    name = str(fn.properties.get("name") or fn.name)
    if not NAME.match(name):
        raise LambdaError(f"function '{fn.name}': name '{name}' is not a Lambda function name "
                          "(letters, digits, '-', '_', at most 64)")  # fmt: skip
    timeout = fn.properties.get("timeout", DEFAULT_TIMEOUT)
    try:
        timeout = int(timeout)
    except (TypeError, ValueError):
        raise LambdaError(f"function '{fn.name}': timeout must be seconds") from None
    if not 1 <= timeout <= 900:
        raise LambdaError(f"function '{fn.name}': timeout {timeout} is outside 1..900 s")
    memory = math.ceil(fn.memory / 2**20) if fn.memory else DEFAULT_MEMORY_MB
    if not 128 <= memory <= 10240:
        raise LambdaError(f"function '{fn.name}': memory {memory} MB is outside 128..10240 MB")
    return {
        "FunctionName": name, "Region": region, "ImageUri": image, "MemorySize": memory,
        "Timeout": timeout, "Environment": {"Variables": dict(fn.environment)},
        "ApiGateway": bool(fn.properties.get("api_gateway")), "Infrastructure": infra_id,
    }  # fmt: skip


class LambdaClient:
    def __init__(self, target: LambdaTarget, region: str) -> None:
        import boto3  # lazily: the SDK loads in a few hundred ms

        if not target.access_key or not target.secret_key:
            raise LambdaError("the Lambda auth line needs username (access key) and password "
                              "(secret key)")  # fmt: skip
        self.target = target
        self.region = region
        # the user's own credentials only: never the server's environment or instance profile
        self.session = boto3.session.Session(
            aws_access_key_id=target.access_key, aws_secret_access_key=target.secret_key,
            aws_session_token=target.session_token, region_name=region,
        )  # fmt: skip
        self.client = self.session.client("lambda")

    def _call(self, what: str, call: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code") or exc.response.get("ResponseMetadata", {}).get(
                "HTTPStatusCode")  # fmt: skip
            raise LambdaError(f"{what}: {code}: {error.get('Message', '')}".rstrip(": ")) from None
        except BotoCoreError as exc:
            raise LambdaError(f"{what}: {exc}") from None

    def create(self, spec: dict[str, Any]) -> str:
        """Create the function (or bring one a crashed run made up to date); its endpoint."""
        if not self.target.role:
            raise LambdaError("the Lambda auth line needs role = <execution role ARN>")
        try:
            self._call("CreateFunction", self.client.create_function,
                       FunctionName=spec["FunctionName"], PackageType="Image",
                       Code={"ImageUri": spec["ImageUri"]}, Role=self.target.role,
                       MemorySize=spec["MemorySize"], Timeout=spec["Timeout"],
                       Environment=spec["Environment"],
                       Tags={TAG: spec["Infrastructure"]})  # fmt: skip
        except LambdaError as exc:
            if "ResourceConflictException" not in str(exc):
                raise
            self.update(spec, image_changed=True)
        return self.endpoint(spec)

    def update(self, spec: dict[str, Any], image_changed: bool) -> str:
        self._call("UpdateFunctionConfiguration", self.client.update_function_configuration,
                   FunctionName=spec["FunctionName"], MemorySize=spec["MemorySize"],
                   Timeout=spec["Timeout"], Environment=spec["Environment"])  # fmt: skip
        if image_changed:
            self._call("UpdateFunctionCode", self.client.update_function_code,
                       FunctionName=spec["FunctionName"], ImageUri=spec["ImageUri"])  # fmt: skip
        return self.endpoint(spec)

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GetFunction", self.client.get_function,
                                           FunctionName=name)  # fmt: skip
        return found

    def delete(self, name: str) -> bool:
        """True if it was there."""
        try:
            self._call("DeleteFunction", self.client.delete_function, FunctionName=name)
        except LambdaError as exc:
            if "ResourceNotFoundException" in str(exc):
                return False
            raise
        self._delete_gateway(name)
        return True

    def invoke(self, name: str, data: bytes) -> bytes:
        """Run it synchronously on `data` (a JSON event, or the bytes wrapped as IM/SCAR's
        `{"body": …}`); its answer."""
        try:
            json.loads(data or b"{}")
            payload = data or b"{}"
        except ValueError:
            payload = json.dumps({"body": data.decode("utf-8", "replace")}).encode()
        answer = self._call("Invoke", self.client.invoke, FunctionName=name, Payload=payload)
        body: bytes = answer["Payload"].read()
        if answer.get("FunctionError"):
            raise LambdaError(f"Invoke: the function failed: {body[:300]!r}")
        return body

    def endpoint(self, spec: dict[str, Any]) -> str:
        """The API Gateway URL when asked for one (made here), else the Lambda invoke URL."""
        name = spec["FunctionName"]
        if not spec.get("ApiGateway"):
            return (f"https://lambda.{self.region}.amazonaws.com/2015-03-31/functions/"
                    f"{name}/invocations")  # fmt: skip
        gateway = self.session.client("apigateway")
        apis = self._call("GetRestApis", gateway.get_rest_apis, limit=500)["items"]
        api = next((a for a in apis if a["name"] == f"orbis-{name}"), None)
        if api is None:
            api = self._call("CreateRestApi", gateway.create_rest_api, name=f"orbis-{name}",
                             tags={TAG: spec["Infrastructure"]})  # fmt: skip
            root = self._call("GetResources", gateway.get_resources,
                              restApiId=api["id"])["items"][0]["id"]  # fmt: skip
            self._call("PutMethod", gateway.put_method, restApiId=api["id"], resourceId=root,
                       httpMethod="ANY", authorizationType="NONE")  # fmt: skip
            arn = self.get(name)["Configuration"]["FunctionArn"]
            self._call("PutIntegration", gateway.put_integration, restApiId=api["id"],
                       resourceId=root, httpMethod="ANY", type="AWS_PROXY",
                       integrationHttpMethod="POST",
                       uri=f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/"
                           f"{arn}/invocations")  # fmt: skip
            self._call("CreateDeployment", gateway.create_deployment, restApiId=api["id"],
                       stageName="scar")  # fmt: skip
        return f"https://{api['id']}.execute-api.{self.region}.amazonaws.com/scar/launch"

    def _delete_gateway(self, name: str) -> None:
        gateway = self.session.client("apigateway")
        try:
            apis = self._call("GetRestApis", gateway.get_rest_apis, limit=500)["items"]
        except LambdaError:
            return
        for api in apis:
            if api["name"] == f"orbis-{name}":
                self._call("DeleteRestApi", gateway.delete_rest_api, restApiId=api["id"])
