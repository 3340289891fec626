"""`sagewatch local`: the whole platform on one machine, over moto's server (see runtime.py)."""
