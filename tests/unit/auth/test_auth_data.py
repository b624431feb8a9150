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
