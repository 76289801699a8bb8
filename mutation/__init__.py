"""Mutation testing of the guard modules: mutmut, one module at a time, against its own tests."""
