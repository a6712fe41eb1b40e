"""``LocalServer(**options)``: its typed options are exactly the ServerConfig fields it does not name."""

import dataclasses
import inspect
import typing

from cartesia.server.config import ServerConfig
from cartesia.server.embed import LocalServer, ServerOptions


def test_server_options_cover_the_config_fields():
    named = set(inspect.signature(LocalServer.__init__).parameters) - {"self", "options"}
    hints = typing.get_type_hints(ServerConfig)
    expected = {f.name: hints[f.name] for f in dataclasses.fields(ServerConfig) if f.name not in named}
    # A new ServerConfig field must be added to ServerOptions too (same name, same type), or
    # type-checked callers cannot pass it.
    assert typing.get_type_hints(ServerOptions) == expected
    assert not ServerOptions.__required_keys__


def test_an_option_reaches_the_config():
    server = LocalServer(engine="tone", max_sockets=3, any_voice=True)
    assert (server.config.max_sockets, server.config.any_voice) == (3, True)
