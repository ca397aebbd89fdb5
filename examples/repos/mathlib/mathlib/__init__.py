from mathlib.vector import Vector

__all__ = ["Vector"]
