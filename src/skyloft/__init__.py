"""skyloft: a self-hostable serverless runtime for Python with Modal's programming model.

    import skyloft

    app = skyloft.App("hello")

    @app.function()
    def square(x):
        return x ** 2
"""

__version__ = "0.1.0"

from . import exception
from .app import App, LocalEntrypoint, Stub
from .context import current_function_call_id, current_input_id, is_local
from .function_call import FunctionCall
from .functions import Function
from .image import Image
from .retries import Retries
from .schedule import Cron, Period

__all__ = [
    "App",
    "Cron",
    "Function",
    "FunctionCall",
    "Image",
    "LocalEntrypoint",
    "Period",
    "Retries",
    "Stub",
    "__version__",
    "current_function_call_id",
    "current_input_id",
    "exception",
    "is_local",
]
