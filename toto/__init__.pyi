# Type stubs for toto (PEP 561; the package ships py.typed). The sources
# stay valid Python 2.7, so their types live in these .pyi files.

version: str
__version__: str
