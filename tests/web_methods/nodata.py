"""Not a method: a module without invoke."""
VALUE = 1
