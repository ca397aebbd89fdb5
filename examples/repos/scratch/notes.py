# Scratch code with no license: all rights reserved by default, so it is left out.
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
