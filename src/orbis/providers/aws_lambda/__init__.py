"""AWS Lambda functions from container images in ECR (functions.py)."""

from orbis.providers.aws_lambda.functions import (
    LambdaClient,
    LambdaError,
    LambdaTarget,
    ecr_region,
    lambda_definition,
)

__all__ = ["LambdaClient", "LambdaError", "LambdaTarget", "ecr_region", "lambda_definition"]
