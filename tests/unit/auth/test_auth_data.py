import pytest

from orbis.auth import AuthError, identify, parse_auth_data, to_header

HEADER = (
    "id = im; type = InfrastructureManager; username = user; password = pass\\n"
    "id = ost; type = OpenStack; host = https://keystone:5000; username = u; "
    "password = 'p;=x'; private_key = a\\\\nb\\n"
)


def test_lines_pairs_quotes_and_escaped_newlines():
    lines = parse_auth_data(HEADER)
    assert lines == [
        {"id": "im", "type": "InfrastructureManager", "username": "user", "password": "pass"},
        {
            "id": "ost",
            "type": "OpenStack",
            "host": "https://keystone:5000",
            "username": "u",
            "password": "p;=x",
            "private_key": "a\nb",
        },
    ]


def test_im_client_style_trailing_semicolons_and_comments():
    text = "# my clouds\nid = im; type = InfrastructureManager; username = a; password = b;\n\n"
    assert parse_auth_data(text) == [
        {"id": "im", "type": "InfrastructureManager", "username": "a", "password": "b"}
    ]


def test_json_array_form():
    lines = parse_auth_data('[{"type": "InfrastructureManager", "username": "u", "password": "p"}]')
    assert lines[0]["username"] == "u"


def test_round_trip_through_header():
    lines = parse_auth_data(HEADER)
    assert parse_auth_data(to_header(lines)) == lines


def test_identity_depends_on_user_and_password():
    a, _ = identify("type = InfrastructureManager; username = u; password = p1")
    b, _ = identify("type = InfrastructureManager; username = u; password = p2")
    assert a.name == b.name == "u"
    assert a.key != b.key


@pytest.mark.parametrize(
    "header, fragment",
    [
        (None, "No authentication data"),
        ("", "No authentication data"),
        ("id = ost; type = OpenStack; username = u; password = p", "InfrastructureManager"),
        ("type = InfrastructureManager; username = u", "username and password"),
        ("type = InfrastructureManager; username = __OPENID__x; password = p", "reserved"),
    ],
)
def test_refused_identities(header, fragment):
    with pytest.raises(AuthError, match=fragment):
        identify(header)


def test_several_im_lines_make_several_identities():
    from orbis.auth import Authenticator

    header = (
        "type = InfrastructureManager; username = a; password = 1\\n"
        "type = InfrastructureManager; username = b; password = 2\\n"
        "id = one; type = OpenNebula; host = h:2633; username = x; password = s3cret-Y\\n"
    )
    who = Authenticator().identify(header)
    assert who.names == ("a", "b") and len(set(who.keys)) == 2
    assert [c["id"] for c in who.clouds] == ["one"]
    assert "s3cret-Y" not in repr(who)  # cloud credentials never printed


def test_json_array_with_several_lines_and_a_single_object():
    text = (
        '[{"type": "InfrastructureManager", "username": "u", "password": "p"},'
        ' {"id": "one", "type": "OpenNebula", "host": "h"}]'
    )
    assert [line["type"] for line in parse_auth_data(text)] == [
        "InfrastructureManager",
        "OpenNebula",
    ]
    assert parse_auth_data('{"type": "InfrastructureManager", "token": "t"}')[0]["token"] == "t"


def test_trailing_separators_as_im_client_writes_them():
    header = "id = im; type = InfrastructureManager; username = a; password = b;\\n"
    assert parse_auth_data(header) == [
        {"id": "im", "type": "InfrastructureManager", "username": "a", "password": "b"}
    ]


def test_unquoted_equals_ends_the_line_quoted_one_does_not():
    assert parse_auth_data("type = X; a = 1; b = x=y; c = 3") == [{"type": "X", "a": "1"}]
    assert parse_auth_data("type = X; b = 'x=y'; c = 3") == [{"type": "X", "b": "x=y", "c": "3"}]
    assert parse_auth_data('password = "it\'s"')[0]["password"] == "it's"


def test_bearer_without_trusted_issuer_is_refused():
    with pytest.raises(AuthError, match="issuer"):
        identify("Bearer abc.def.ghi")
