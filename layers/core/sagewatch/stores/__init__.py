"""The stores: one class per table, bucket or queue, the only code that calls AWS for sagewatch's data.

Built once per process by sagewatch.container; each maps botocore's errors to sagewatch's own.
"""
