"""The `Image.run_function` build step, inside the image being built: call the pickled function.

Run as `python3 -m skyloft.container.build_function FILE`; an exception
prints its traceback and fails the step, which shows it to the caller.
"""

import pickle
import sys
import traceback


def main(path: str) -> None:
    with open(path, "rb") as f:
        function, args, kwargs, source_file = pickle.load(f)  # written by cloudpickle, which is on the path
    try:
        function(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - reported, then the step fails
        user_frames = exc.__traceback__.tb_next if exc.__traceback__ else None  # not this module's own frame
        lines = traceback.format_exception(type(exc), exc, user_frames)
        # cloudpickle renames code it carries by value; name the caller's file again.
        sys.stderr.write("".join(lines).replace('File "<dynamic-code>"', f'File "{source_file}"'))
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1])
