"""Integer helpers that keep every intermediate a small int (|x| < 2**30 on 32-bit ports).

The argument bounds are stated per function; the callers' config hard limits keep to them.
"""


def scale_1e4(a, b):
    """floor(a * 10000 / b) for 0 <= a < 2**30 and 1 <= b <= 10000 (exact).

    a // b * 10000 must stay below 2**30, i.e. a < 107374 * b.
    """
    q = a // b
    return q * 10000 + (a - q * b) * 10000 // b


def ratio_1e4(a, b):
    """floor(a * 10000 / b) for 0 <= a < 2**30 and 1 <= b < 2**30 / 10 (exact), when the
    result itself is a small int (a * 10000 / b < 2**30).

    Long division one decimal digit at a time: the running remainder stays below b,
    so remainder * 10 stays below 2**30; two digits at a time (base 100) where b is small
    enough for remainder * 100 (every cell's capacity up to 2.9 Ah in mAs): the same digits
    in half the steps.
    """
    q = a // b
    r = a - q * b
    if b <= 10737418:  # r * 100 < 2**30
        r *= 100
        d = r // b
        r = (r - d * b) * 100
        return (q * 100 + d) * 100 + r // b
    res = q
    # four decimal digits, unrolled: no loop object on any port
    r *= 10
    d = r // b
    res = res * 10 + d
    r -= d * b
    r *= 10
    d = r // b
    res = res * 10 + d
    r -= d * b
    r *= 10
    d = r // b
    res = res * 10 + d
    r -= d * b
    r *= 10
    d = r // b
    return res * 10 + d


def of_1e4(x, part):
    """floor(x * part / 10000) for 0 <= x < 2**30 and 0 <= part <= 10000 (exact)."""
    hi = x // 10000
    return hi * part + (x - hi * 10000) * part // 10000


def isqrt(n):
    """floor(sqrt(n)) for 0 <= n < 2**30 (Newton iteration on ints)."""
    if n < 2:
        return n
    x = n
    y = (x >> 1) + (x & 1)  # ceil(n / 2) without forming n + 1, which may be 2**30
    while y < x:
        x = y
        y = (x + n // x) >> 1
    return x


def muldiv(a, b, d):
    """floor(a * b / d) for 0 <= a < 2**30, |b| * d < 2**30 and 1 <= d, when the result
    itself is a small int (exact: a = q d + r, so a b / d = q b + r b / d, and q b is whole
    whatever the sign of b)."""
    q = a // d
    return q * b + (a - q * d) * b // d


def interp(xs, ys, n, x):
    """ys at x, linear between the n points of the increasing xs, held at the ends.
    |dy| * |dx| must stay below 2**30 (the callers' tables: mV x dmAhg, pct x ddegC)."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[n - 1]:
        return ys[n - 1]
    i = 1
    while xs[i] < x:
        i += 1
    x0 = xs[i - 1]
    y0 = ys[i - 1]
    return y0 + (ys[i] - y0) * (x - x0) // (xs[i] - x0)


def step_at(xs, ys, n, x):
    """The step table's value at x: ys[i] from xs[i] up to xs[i + 1]; 0 below xs[0]."""
    v = 0
    for i in range(n):
        if x < xs[i]:
            return v
        v = ys[i]
    return v


def clamp(v, hi):
    """v within 0..hi."""
    return 0 if v < 0 else (hi if v > hi else v)
