"""Every IM route: status codes of reference §1.3, shapes, and per-user isolation."""

from __future__ import annotations

import json

import pytest

from .conftest import ALICE, BOB, EMPTY, create

NOBODY = "id = x; type = OpenStack; username = u; password = p"
CLOUD_SECRET = "Cl0ud-Pa55-7f3a9e"
ALICE_WITH_CLOUDS = (
    ALICE + "\\nid = loc; type = Local\\n"
    f"id = ost; type = OpenStack; host = https://keystone:5000; username = u; "
    f"password = {CLOUD_SECRET}; tenant = t"
)

# (method, path template, body) of every route acting on one infrastructure
PER_INFRA = [
    ("GET", "/infrastructures/{id}", None),
    ("POST", "/infrastructures/{id}", EMPTY),
    ("DELETE", "/infrastructures/{id}", None),
    ("PUT", "/infrastructures/{id}/start", None),
    ("PUT", "/infrastructures/{id}/stop", None),
    ("PUT", "/infrastructures/{id}/reconfigure", None),
    ("POST", "/infrastructures/{id}/authorization", '{"username": "x", "password": "y"}'),
    *[
        ("GET", f"/infrastructures/{{id}}/{p}", None)
        for p in ("state", "contmsg", "radl", "tosca", "outputs", "data", "authorization")
    ],
    ("GET", "/infrastructures/{id}/vms/0", None),
    ("PUT", "/infrastructures/{id}/vms/0", ""),
    ("DELETE", "/infrastructures/{id}/vms/0", None),
    ("GET", "/infrastructures/{id}/vms/0/state", None),
    ("PUT", "/infrastructures/{id}/vms/0/stop", None),
    ("PUT", "/infrastructures/{id}/vms/0/start", None),
    ("PUT", "/infrastructures/{id}/vms/0/reboot", None),
    ("PUT", "/infrastructures/{id}/vms/0/disks/0/snapshot?image_name=x", None),
    ("GET", "/orbis/infrastructures/{id}", None),
    ("GET", "/orbis/infrastructures/{id}/events", None),
    ("GET", "/orbis/infrastructures/{id}/stream", None),
    ("POST", "/orbis/plan?infId={id}", EMPTY),
]


def call(client, method, path, body=None, auth=ALICE, **headers):
    if auth is not None:
        headers["Authorization"] = auth
    if body is not None and "Content-Type" not in headers:
        headers["Content-Type"] = "application/json" if body.startswith("{") else "text/yaml"
    return client.request(method, path, content=body, headers=headers)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.mark.parametrize("method, path, body", PER_INFRA)
def test_another_user_can_never_act(client, method, path, body):
    theirs = create(client, BOB)
    answer = call(client, method, path.format(id=theirs), body, auth=ALICE)
    assert answer.status_code == 403, answer.text
    assert "not granted" in answer.text
    # and it is untouched
    assert call(client, "GET", f"/infrastructures/{theirs}/state", auth=BOB).status_code == 200
    assert theirs not in call(client, "GET", "/infrastructures").text


@pytest.mark.parametrize("method, path, body", PER_INFRA)
def test_status_table_per_infrastructure_route(client, method, path, body):
    infra_id = create(client)
    url = path.format(id=infra_id)
    assert call(client, method, url, body, auth=None).status_code == 401
    assert call(client, method, url, body, auth=NOBODY).status_code == 400  # IM: not 401 here
    assert call(client, method, path.format(id="no-such-id"), body).status_code == 404
    answer = call(client, method, url, body)
    assert answer.status_code < 500, answer.text  # lifecycle stubs answer 400, never 500


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/infrastructures"),
        ("POST", "/infrastructures"),
        ("PUT", "/infrastructures"),
        ("GET", "/clouds/loc/images"),
        ("GET", "/clouds/loc/quotas"),
    ],
)
def test_collection_routes_answer_401(client, method, path):
    assert call(client, method, path, auth=None).status_code == 401
    assert call(client, method, path, auth=NOBODY).status_code == 401


def test_deleted_infrastructure_and_vm(client):
    infra_id = create(client)
    assert call(client, "DELETE", f"/infrastructures/{infra_id}").status_code == 200
    answer = call(client, "GET", f"/infrastructures/{infra_id}/contmsg")
    assert answer.status_code == 404 and "Deleted infrastructure." in answer.text
    assert call(client, "GET", "/stats", auth=NOBODY).status_code == 400


def test_unknown_property_operation_and_vm(client):
    infra_id = create(client)
    for method, path in [
        ("GET", f"/infrastructures/{infra_id}/nonsense"),
        ("PUT", f"/infrastructures/{infra_id}/explode"),
        ("GET", f"/infrastructures/{infra_id}/vms/9"),
        ("GET", f"/infrastructures/{infra_id}/vms/x"),
        ("DELETE", f"/infrastructures/{infra_id}/vms/1,x"),
        ("GET", "/no/such/route"),
    ]:
        assert call(client, method, path).status_code == 404, path


def test_reconfigure_vm_list_validation(client):
    infra_id = create(client)
    answer = call(client, "PUT", f"/infrastructures/{infra_id}/reconfigure?vm_list=1,a")
    assert answer.status_code == 400 and answer.text == "Incorrect vm_list format."


def test_lifecycle_stub_gives_im_error_shape(client):
    infra_id = create(client)
    answer = call(client, "PUT", f"/infrastructures/{infra_id}/stop", Accept="application/json")
    if answer.status_code != 200:  # until issue 5 lands
        assert answer.status_code == 400
        assert answer.json()["code"] == 400 and answer.json()["message"]


def test_media_types(client):
    infra_id = create(client)
    bad = call(client, "POST", "/infrastructures", EMPTY, **{"Content-Type": "image/png"})
    assert bad.status_code == 415
    assert call(client, "GET", "/infrastructures", Accept="image/png").status_code == 415
    for prop in ("state", "outputs", "data"):
        url = f"/infrastructures/{infra_id}/{prop}"
        assert call(client, "GET", url, Accept="text/plain").status_code == 415, prop
        assert call(client, "GET", url).headers["content-type"] == "application/json"
    tosca = call(client, "GET", f"/infrastructures/{infra_id}/tosca")
    assert tosca.text == EMPTY and tosca.headers["content-type"].startswith("text/yaml")
    as_json = call(client, "GET", f"/infrastructures/{infra_id}/tosca", Accept="application/json")
    assert as_json.json() == {"tosca": EMPTY}
    html = call(client, "GET", "/infrastructures/nope/state", Accept="text/html")
    assert html.headers["content-type"].startswith("text/html") and "404" in html.text


def test_bad_flags_answer_400(client):
    infra_id = create(client)
    for url in (
        f"/infrastructures/{infra_id}/contmsg?headeronly=perhaps",
        f"/infrastructures/{infra_id}/data?delete=2",
        "/stats?init_date=yesterday",
    ):
        answer = call(client, "GET", url)
        assert answer.status_code == 400 and "Incorrect value in" in answer.text, url
    # IM-client 1.8.4 sends "?force=yes?async=yes"
    answer = call(client, "DELETE", f"/infrastructures/{infra_id}?force=yes?async=yes")
    assert answer.status_code == 200


def test_list_filter_is_a_regex_over_the_template(client):
    a = create(client)
    b = create(client, body=EMPTY.replace("infra_name: empty", "infra_name: special-42"))
    listed = call(client, "GET", "/infrastructures?filter=special-[0-9]{2}").text
    assert b in listed and a not in listed
    assert call(client, "GET", "/infrastructures?filter=(").status_code == 400


def test_contmsg_headeronly_and_vm_list(client):
    infra_id = create(client)
    full = call(client, "GET", f"/infrastructures/{infra_id}/contmsg").text
    head = call(client, "GET", f"/infrastructures/{infra_id}/contmsg?headeronly=yes").text
    assert head and full.startswith(head)
    vms = call(client, "GET", f"/infrastructures/{infra_id}", Accept="application/json")
    assert vms.json() == {"uri-list": []}


def test_authorization_append_and_overwrite(client):
    infra_id = create(client)
    url = f"/infrastructures/{infra_id}/authorization"
    assert call(client, "GET", url).text == "alice"
    assert call(client, "POST", url, '{"username": "bob", "password": "b1"}').status_code == 200
    assert call(client, "GET", url, Accept="application/json").json() == {
        "authorization": ["alice", "bob"]
    }
    assert call(client, "GET", f"/infrastructures/{infra_id}/state", auth=BOB).status_code == 200
    assert infra_id in call(client, "GET", "/infrastructures", auth=BOB).text
    overwrite = call(
        client, "POST", url + "?overwrite=yes", '{"username": "bob", "password": "b1"}'
    )
    assert overwrite.status_code == 200
    assert call(client, "GET", url, auth=ALICE).status_code == 403  # alice gave it away
    assert call(client, "POST", url, "not json", auth=BOB).status_code == 415  # text/yaml
    assert call(client, "POST", url, "{nope", auth=BOB).status_code == 400
    assert call(client, "POST", url, '{"type": "OpenStack"}', auth=BOB).status_code == 400


def test_export_then_import_gets_a_new_id_and_changes_owner(client):
    infra_id = create(client)
    data = call(client, "GET", f"/infrastructures/{infra_id}/data?delete=yes").json()["data"]
    assert isinstance(data, str) and json.loads(data)["id"] == infra_id
    assert call(client, "GET", f"/infrastructures/{infra_id}/state").status_code == 404
    answer = call(client, "PUT", "/infrastructures", data, auth=BOB)
    assert answer.status_code == 200
    new_id = answer.text.rsplit("/", 1)[-1]
    assert new_id != infra_id  # an import never takes the id in its data
    assert call(client, "GET", f"/infrastructures/{new_id}/state", auth=BOB).status_code == 200
    assert call(client, "GET", f"/infrastructures/{new_id}/state").status_code == 403
    assert call(client, "GET", f"/infrastructures/{infra_id}/state", auth=BOB).status_code == 404
    # rubbish is refused
    for bad in ("[]", '{"format": "x"}', "nope", '{"format": "orbis-export/1"}'):
        answer = call(client, "PUT", "/infrastructures", bad, auth=BOB, **{"Content-Type": ""})
        assert answer.status_code == 400, bad
    radl_made = json.loads(data)
    radl_made["infrastructure"]["template_format"] = "radl"
    radl_id = call(client, "PUT", "/infrastructures", json.dumps(radl_made)).text
    radl_id = radl_id.rsplit("/", 1)[-1]
    for prop in ("tosca", "outputs"):
        assert call(client, "GET", f"/infrastructures/{radl_id}/{prop}").status_code == 403


def test_dry_run_creates_nothing_and_answers_im_shape(client):
    answer = call(client, "POST", "/infrastructures?dry_run=yes", EMPTY, auth=ALICE_WITH_CLOUDS)
    assert answer.status_code == 200
    assert answer.json() == {
        "loc": {"cloudType": "Local", "cloudEndpoint": answer.json()["loc"]["cloudEndpoint"],
                "compute": [], "storage": []}
    }  # fmt: skip
    scaled = EMPTY.replace("count: 0", "count: 2")
    compute = call(client, "POST", "/infrastructures?dry_run=1", scaled).json()["local"]["compute"]
    assert compute == [
        {"cpuCores": 2, "memoryInMegabytes": 2000, "diskSizeInGigabytes": 0, "publicIP": 0,
         "GPU": 0}
    ] * 2  # fmt: skip
    assert call(client, "GET", "/infrastructures").text == ""


def test_dry_run_goes_to_the_first_cloud_or_the_placement(client):
    scaled = EMPTY.replace("count: 0", "count: 1")
    clouds = (ALICE + "\\nid = ost; type = OpenStack; host = https://keystone.example:5000"
              "\\nid = aws; type = EC2; username = a; password = b")  # fmt: skip
    answer = call(client, "POST", "/infrastructures?dry_run=yes", scaled, auth=clouds).json()
    assert list(answer) == ["ost"] and answer["ost"]["cloudType"] == "OpenStack"
    assert answer["ost"]["cloudEndpoint"] == "https://keystone.example:5000"
    placed = scaled + """  policies:
    - where: {type: tosca.policies.Placement, properties: {cloud_id: aws}, targets: [front]}
"""
    answer = call(client, "POST", "/infrastructures?dry_run=yes", placed, auth=clouds).json()
    assert list(answer) == ["aws"] and answer["aws"]["cloudType"] == "EC2"
    assert call(client, "GET", "/infrastructures", auth=clouds).text == ""


def test_plan_of_a_create_and_of_an_update(client):
    scaled = EMPTY.replace("count: 0", "count: 3")
    plan = call(client, "POST", "/orbis/plan", scaled).json()
    assert plan["infrastructure"] is None and plan["summary"] == {
        "create": 3,
        "change": 0,
        "remove": 0,
    }
    infra_id = create(client)
    update = EMPTY.replace("num_cpus: 2", "num_cpus: 4").replace("count: 0", "count: 1")
    plan = call(client, "POST", f"/orbis/plan?infId={infra_id}&merge=no", update).json()
    assert plan["create"][0]["node"] == "front" and plan["create"][0]["count"] == 1
    assert call(client, "GET", "/infrastructures").text.count("/") == 4  # still one infra


def test_stream_of_a_settled_infrastructure_ends(client):
    infra_id = create(client)
    with client.stream(
        "GET", f"/orbis/infrastructures/{infra_id}/stream", headers={"Authorization": ALICE}
    ) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        text = "".join(answer.iter_text())
    kinds = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("event:")]
    assert kinds[0] == "detail" and kinds[-1] == "end"
    # a client that connects after the work ended still gets the history (replayed, then end)
    recorded = client.app.state.service.store.events(infra_id, 0)
    assert recorded and kinds.count("event") == len(recorded)
    with client.stream(
        "GET", f"/orbis/infrastructures/{infra_id}/stream?after={recorded[-1].id}",
        headers={"Authorization": ALICE},
    ) as answer:  # fmt: skip
        rest = "".join(answer.iter_text())
    assert "event: event" not in rest and "event: end" in rest


def test_version_health_root_stats_and_clouds(client):
    assert call(client, "GET", "/version", auth=None).status_code == 200
    assert call(client, "GET", "/health", auth=None).json()["status"] == "ok"
    assert "paths" in call(client, "GET", "/", auth=None).json()
    assert "swagger" in call(client, "GET", "/", auth=None, Accept="text/html").text.lower()
    infra_id = create(client)
    stats = call(client, "GET", "/stats").json()["stats"]
    assert [s["inf_id"] for s in stats] == [infra_id] and stats[0]["im_user"] == "alice"
    csv_text = call(client, "GET", "/stats?init_date=2000/01/01", Accept="text/csv").text
    assert csv_text.splitlines()[0].startswith("creation_date,tosca_name")
    assert infra_id in csv_text
    assert call(client, "GET", "/stats?end_date=2000-01-01").json() == {"stats": []}
    images = call(client, "GET", "/clouds/loc/images", auth=ALICE_WITH_CLOUDS).json()
    assert images["images"][0]["uri"].startswith("docker://")
    quotas = call(client, "GET", "/clouds/loc/quotas", auth=ALICE_WITH_CLOUDS).json()
    assert set(quotas["quotas"]) >= {"cores", "ram", "instances"}
    for bad in ("/clouds/nope/images", "/clouds/ost/images", "/clouds/loc/images?filters=a"):
        assert call(client, "GET", bad, auth=ALICE_WITH_CLOUDS).status_code == 400, bad
    text = call(client, "GET", "/clouds/loc/images", auth=ALICE_WITH_CLOUDS, Accept="text/plain")
    assert text.status_code == 415


def test_request_size_limit_and_cors(make_client):
    client = make_client(max_request_bytes=1000, cors_origin="*")
    big = EMPTY + "#" * 2000
    assert call(client, "POST", "/infrastructures", big).status_code == 413
    pre = client.options("/infrastructures/x", headers={"Origin": "http://a"})
    assert pre.status_code == 200 and pre.text == "{}"
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" in client.get("/version").headers


def test_cloud_credentials_are_stored_sealed_and_never_shown(make_client, tmp_path):
    client = make_client()
    infra_id = create(client, ALICE_WITH_CLOUDS)
    answers = [
        call(client, method, path.format(id=infra_id), body, auth=ALICE_WITH_CLOUDS, **extra).text
        for method, path, body in PER_INFRA
        if method == "GET"
        for extra in ({}, {"Accept": "application/json"})
    ]
    answers.append(call(client, "GET", "/stats", auth=ALICE_WITH_CLOUDS).text)
    assert not any(CLOUD_SECRET in a for a in answers)
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert CLOUD_SECRET.encode() not in file.read_bytes(), file
    svc = client.app.state.service
    assert CLOUD_SECRET in json.dumps(svc.cloud_credentials(infra_id))  # but it is there
