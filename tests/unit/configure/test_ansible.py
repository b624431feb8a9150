import os
import shlex
import time
from pathlib import Path, PurePosixPath

import pytest

from orbis.configure.ansible import (
    PlaybookError,
    StepRun,
    Target,
    ansible_env,
    build_inventory,
    build_playbook,
    check_variables,
    collect,
    jump_args,
    load_plays,
    read_new,
    write_new,
)
from orbis.runner.options import PATHS


def test_task_list_becomes_one_play():
    plays = load_plays("- name: t\n  debug: {msg: hi}\n", "x.yml")
    assert plays == [{"name": "x.yml", "tasks": [{"name": "t", "debug": {"msg": "hi"}}]}]


def test_plays_kept_and_not_a_playbook_refused():
    assert load_plays("- hosts: all\n  tasks: []\n", "p")[0]["hosts"] == "all"
    with pytest.raises(PlaybookError, match="list of plays"):
        load_plays("key: value\n", "bad.yml")
    with pytest.raises(PlaybookError, match="not valid YAML"):
        load_plays("- [unclosed\n", "bad.yml")


def test_an_alias_bomb_playbook_is_refused_at_once_naming_the_limit():
    """A "billion laughs" in a recipe (9 levels of 9 aliases: 9^9 values in under 1 KB) is
    refused before anything walks it; yaml.safe_load would accept it (shared lists) and the
    playbook written for the runner would expand it."""
    text = '- name: t\n  vars:\n    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        text += f"    {name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
    text += "  debug: {msg: '{{ i }}'}\n"
    start = time.perf_counter()
    with pytest.raises(PlaybookError, match="ORBIS_MAX_YAML_NODES") as refused:
        load_plays(text, "bomb.yml")
    assert time.perf_counter() - start < 1.0
    assert str(refused.value).startswith("bomb.yml")


def test_plays_are_aimed_at_their_step_group_with_step_variables():
    steps = [
        StepRun(
            "a_conf",
            ["web_0"],
            [{"hosts": "x", "connection": "local", "tasks": [], "vars": {"k": 1}}],
            {"v": 2},
        )
    ]
    play = build_playbook(steps)[0]
    assert play["hosts"] == "orbis_step_0"
    assert "connection" not in play
    assert play["vars"] == {"k": 1, "v": 2, "orbis_step": "a_conf"}


def test_inventory_has_hosts_node_groups_and_step_groups():
    targets = [Target("web_0", "10.0.0.2", groups=("web",), variables={"IM_NODE_VMID": 0})]
    inv = build_inventory(targets, [StepRun("s", ["web_0"], [])], Path("/k"))
    host = inv["all"]["hosts"]["web_0"]
    assert host["ansible_host"] == "10.0.0.2" and host["ansible_ssh_private_key_file"] == "/k"
    assert host["IM_NODE_VMID"] == 0
    assert "web_0" in inv["all"]["children"]["web"]["hosts"]
    assert "web_0" in inv["all"]["children"]["orbis_step_0"]["hosts"]


def test_only_nodes_on_this_host_skip_the_quantum_safe_key_exchange():
    """curve25519 alone for the local back-end's nodes (its sntrup761 hybrid costs the client
    ~65 ms of CPU per connection); a cloud node keeps OpenSSH's default, also through a jump."""
    targets = [Target("here_0", "10.89.0.2", on_this_host=True),
               Target("here_1", "10.89.1.2", jump="root@10.89.0.2:22", on_this_host=True),
               Target("cloud_0", "203.0.113.5"),
               Target("cloud_1", "10.0.0.7", jump="root@203.0.113.5:22")]  # fmt: skip
    hosts = build_inventory(targets, [], Path("/k"))["all"]["hosts"]
    for name in ("here_0", "here_1"):
        assert shlex.split(hosts[name]["ansible_ssh_extra_args"]) == [
            "-o", "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org"]
    assert "ansible_ssh_extra_args" not in hosts["cloud_0"]
    assert "ansible_ssh_extra_args" not in hosts["cloud_1"]

    def proxy(host: str) -> list[str]:
        (option,) = shlex.split(hosts[host]["ansible_ssh_common_args"])[1:]
        return shlex.split(option.removeprefix("ProxyCommand="))

    assert "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org" in proxy("here_1")
    assert not any(word.startswith("KexAlgorithms") for word in proxy("cloud_1"))


def test_results_are_split_per_step_and_host():
    steps = [StepRun("s1", ["a", "b"], []), StepRun("s2", ["a"], [])]
    events = [
        {"kind": "result", "step": "s1", "host": "a", "task": "t", "status": "ok", "result": {}},
        {
            "kind": "result",
            "step": "s1",
            "host": "b",
            "task": "t",
            "status": "failed",
            "result": {"msg": "boom"},
        },
    ]
    results = collect(steps, events, "PLAY RECAP", 2)
    assert results[("s1", "a")].ok
    assert not results[("s1", "b")].ok and "boom" in results[("s1", "b")].output
    # a host that ran nothing in a failed run did not succeed
    assert not results[("s2", "a")].ok


def test_jump_arguments_quote_the_template_user():
    """The jump login comes from the template: it stays one word of the ProxyCommand."""
    hostile = "x;touch /tmp/pwned #@10.0.0.1"
    args = shlex.split(jump_args(f"{hostile}:22", PurePosixPath("/orbis/key/id ed25519")))
    assert len(args) == 2 and args[0] == "-o" and args[1].startswith("ProxyCommand=")
    proxy = shlex.split(args[1].removeprefix("ProxyCommand="))
    assert proxy[-2:] == ["--", hostile]
    assert proxy[proxy.index("-i") + 1] == "/orbis/key/id ed25519"
    with pytest.raises(PlaybookError):
        jump_args("root@10.0.0.1:22;id", PurePosixPath("/k"))


@pytest.mark.parametrize("name", ["ansible_connection", "ansible_host", "ansible_ssh_common_args",
                                  "ansible_ssh_extra_args", "ansible_ssh_executable",
                                  "ansible_port", "ansible_user", "ansible_python_interpreter",
                                  "ansible_ssh_private_key_file", "ANSIBLE_become_exe",
                                  "mitogen_via", "mitogen_kind", "MITOGEN_ssh_debug_level"])
def test_inputs_cannot_set_connection_variables(name):
    with pytest.raises(PlaybookError, match=f"web.configure: input '{name}' is refused"):
        check_variables({"port": 80, name: "-o ProxyCommand=touch /tmp/x"}, "web.configure")
    check_variables({"port": 80, "my_ansible_host": "ok", "my_mitogen": "ok"}, "web.configure")


def test_environment_is_made_from_nothing(monkeypatch):
    monkeypatch.setenv("ORBIS_SECRET_KEY", "s3cret")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA")
    env = ansible_env(PATHS, PATHS.workspace / "e.jsonl")
    assert not [k for k in env if not k.startswith(("ANSIBLE_", "ORBIS_EVENTS_FILE"))]
    assert "s3cret" not in str(env) and "AKIA" not in str(env)
    # SSH state in the runner's own HOME, never a folder shared with other infrastructures
    assert env["ANSIBLE_SSH_CONTROL_PATH_DIR"].startswith(f"{PATHS.home}/")
    assert f"UserKnownHostsFile={PATHS.home}/" in env["ANSIBLE_SSH_ARGS"]


def test_files_in_the_runner_folder_are_never_followed(tmp_path):
    """A play can write in its runner folder: a link it leaves there must not make the
    service write or read a host file."""
    secret = tmp_path / "host-secret"
    secret.write_text("root:x:0:0\n")
    (tmp_path / "level.yml").symlink_to(secret)
    with pytest.raises(OSError):
        write_new(tmp_path / "level.yml", "- hosts: all\n")
    assert secret.read_text() == "root:x:0:0\n"
    (tmp_path / "events.jsonl").symlink_to(secret)
    assert read_new(tmp_path / "events.jsonl", 0) == ("", 0)
    os.mkfifo(tmp_path / "fifo")
    assert read_new(tmp_path / "fifo", 0) == ("", 0)  # and does not block
    (tmp_path / "ok.jsonl").write_text('{"a": 1}\n{"b"')
    assert read_new(tmp_path / "ok.jsonl", 0) == ('{"a": 1}', 9)


def test_forks_follow_the_hosts_and_mitogen_only_for_large_levels(monkeypatch):
    plugins = "/usr/lib/ansible_mitogen/plugins/strategy"
    monkeypatch.delenv("ORBIS_MITOGEN_MIN_HOSTS", raising=False)
    small = ansible_env(PATHS, PATHS.workspace / "e.jsonl", hosts=3, mitogen=plugins)
    assert small["ANSIBLE_FORKS"] == "5" and "ANSIBLE_STRATEGY" not in small
    large = ansible_env(PATHS, PATHS.workspace / "e.jsonl", hosts=20, mitogen=plugins)
    assert large["ANSIBLE_FORKS"] == "20"
    assert large["ANSIBLE_STRATEGY"] == "mitogen_linear"
    assert large["ANSIBLE_STRATEGY_PLUGINS"] == plugins
    assert ansible_env(PATHS, PATHS.workspace / "e.jsonl", hosts=500)["ANSIBLE_FORKS"] == "50"
    # a runner without Mitogen (the front-end node, an older image) keeps Ansible's strategy
    assert "ANSIBLE_STRATEGY" not in ansible_env(PATHS, PATHS.workspace / "e.jsonl", hosts=20)
    monkeypatch.setenv("ORBIS_MITOGEN_MIN_HOSTS", "off")
    assert "ANSIBLE_STRATEGY" not in ansible_env(PATHS, PATHS.workspace / "e.jsonl", 20, plugins)
    monkeypatch.setenv("ORBIS_MITOGEN_MIN_HOSTS", "1")
    one = ansible_env(PATHS, PATHS.workspace / "e.jsonl", hosts=1, mitogen=plugins)
    assert one["ANSIBLE_STRATEGY"] == "mitogen_linear"
