"""TotoServer programs and method packages the server tests run as real processes."""
