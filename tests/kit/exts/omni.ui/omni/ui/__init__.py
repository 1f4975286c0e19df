"""Stand-in for ``omni.ui`` in tests: widgets are plain records, kept in :data:`BUILT` in creation order."""

BUILT = []
"""Every widget made, oldest first."""


class _Widget:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        BUILT.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _ValueModel:
    def __init__(self, value=""):
        self.value = value

    def set_value(self, value):
        self.value = value

    def get_value_as_string(self):
        return str(self.value)

    @property
    def as_int(self):
        return int(self.value)


class _ComboModel:
    def __init__(self, index):
        self.index = _ValueModel(index)

    def get_item_value_model(self):
        return self.index


class Window(_Widget):
    def __init__(self, title, **kwargs):
        super().__init__(title, **kwargs)
        self.title = title
        self.frame = _Widget()
        self.visible = True


class VStack(_Widget):
    pass


class HStack(_Widget):
    pass


class Label(_Widget):
    def __init__(self, text, **kwargs):
        super().__init__(text, **kwargs)
        self.text = text


class Button(_Widget):
    def __init__(self, text, clicked_fn=None, **kwargs):
        super().__init__(text, **kwargs)
        self.text, self.clicked_fn = text, clicked_fn


class ComboBox(_Widget):
    def __init__(self, index, *items, **kwargs):
        super().__init__(index, *items, **kwargs)
        self.items = list(items)
        self.model = _ComboModel(index)


class StringField(_Widget):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.model = _ValueModel("")


class ByteImageProvider(_Widget):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.data, self.size = None, None

    def set_bytes_data(self, data, size):
        self.data, self.size = data, list(size)


class ImageWithProvider(_Widget):
    def __init__(self, provider, **kwargs):
        super().__init__(provider, **kwargs)
        self.provider = provider
