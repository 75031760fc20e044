"""Generated gRPC stubs; see generate.py."""
