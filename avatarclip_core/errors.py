"""User-facing errors: bad input that must produce one clear line, never a traceback."""


class UserInputError(ValueError):
    """Input a user can fix (unknown slider, out-of-range value, bad path, ...)."""


class OutputExistsError(UserInputError):
    pass


class OutputNotWritableError(UserInputError):
    pass
