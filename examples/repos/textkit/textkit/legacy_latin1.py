# -*- coding: latin-1 -*-
"""Legacy helpers kept for old callers."""

GREETING = "Olá, señor"


def greet():
    return GREETING
