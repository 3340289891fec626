"""sagewatch: self-hosted, serverless ML model monitoring for AWS."""

__version__ = "0.1.0"
