"""The skyloft apps the benchmarks run: one for warm calls and one for cold starts."""

import skyloft

app = skyloft.App("bench")


@app.function()
def noop(x):
    """Return the input unchanged."""
    return x


cold_app = skyloft.App("bench-cold")


@cold_app.function()
def cold_noop(x):
    """Return the input unchanged; only ever called on a freshly started app."""
    return x
