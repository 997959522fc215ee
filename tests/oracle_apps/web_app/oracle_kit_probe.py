"""What the kit requests until a server answers: which server it is (its process group)."""
import os


def invoke(handler, parameters):
    return {'process_group': os.getpgid(0)}
