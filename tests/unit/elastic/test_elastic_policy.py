"""The elastic policy: queue + workers + knobs → decisions with reasons (pure)."""

from orbis.elastic.policy import DOWN_GRACE, Decision, History, Worker, decide
from orbis.elastic.slurm import SlurmJob
from orbis.model.elastic import ElasticCluster, Knobs, WorkerPool


def cluster(max_a=2, max_b=2, cpus=1, **knobs):
    return ElasticCluster(
        "ec",
        "slurm",
        "front",
        [WorkerPool("wn_a", 0, max_a, cpus, 400), WorkerPool("wn_b", 0, max_b, cpus, 400)],
        Knobs(**knobs),
    )


def job(n, cpus=1, nodes=1, memory=0, reason="Resources", partition="debug"):
    return SlurmJob(str(n), "PENDING", cpus, nodes, memory, partition, reason)


def up(vm, pool="wn_a", lrms="idle", free=1, idle=0.0, **kw):
    return Worker(vm, pool, f"{pool}-{vm}", "configured", 100.0, lrms, free, idle, **kw)


def booting(vm, pool="wn_a", age=10.0, state="running"):
    return Worker(vm, pool, f"{pool}-{vm}", state, age)


def actions(decisions):
    return [(d.action, d.pool or d.vm_id) for d in decisions]


def test_empty_cluster_with_jobs_powers_on_in_parallel_up_to_max_booting():
    out = decide(cluster(), [], [job(i) for i in range(1, 9)], [], History())
    assert actions(out) == [("power_on", "wn_a"), ("power_on", "wn_a"), ("wait", None)]
    assert out[0].reason == "8 jobs pending need 8 CPUs; powering on a worker on wn_a"
    assert "2 more workers wanted" in out[2].reason and "max_booting 2" in out[2].reason


def test_burst_to_the_next_site_when_the_first_is_at_max():
    out = decide(cluster(max_booting=4), [], [job(i) for i in range(1, 9)], [], History())
    assert [d.pool for d in out if d.action == "power_on"] == ["wn_a", "wn_a", "wn_b", "wn_b"]
    assert out[2].reason.endswith("powering on a worker on wn_b (wn_a at max 2)")


def test_booting_workers_count_as_supply_and_the_max_as_a_limit():
    workers = [booting(1), booting(2), booting(3, "wn_b"), booting(4, "wn_b")]
    out = decide(cluster(max_booting=9), workers, [job(i) for i in range(1, 9)], [], History())
    assert actions(out) == [("wait", None)]
    assert out[0].reason == (
        "8 jobs pending need 8 CPUs; not powering on: max 4 reached (wn_a at max 2, wn_b at max 2)"
    )


def test_jobs_that_fit_on_idle_or_booting_workers_power_nothing_on():
    workers = [up(1, free=1), booting(2)]
    assert decide(cluster(), workers, [job(1), job(2)], [], History()) == []


def test_a_booting_worker_is_never_judged_before_its_deadline():
    late = booting(1, age=599.0)
    assert decide(cluster(boot_deadline=600), [late], [job(1)], [], History()) == []
    out = decide(cluster(boot_deadline=600), [booting(1, age=601.0)], [job(1)], [], History())
    assert out[0] == Decision(
        "retry",
        "wn_a-1 did not join Slurm within 600 s (failure 1 of 3 allowed on wn_a): re-creating it",
        "wn_a",
        1,
        "wn_a-1",
    )
    # its replacement is asked for in the same cycle
    assert ("power_on", "wn_a") in actions(out)


def test_a_pool_failing_to_join_is_given_up_and_the_next_site_used():
    history = History(join_failures={"wn_a": 3})
    out = decide(cluster(), [booting(1, state="failed")], [job(1)], [], history)
    assert out[0].action == "give_up" and "3 retries spent on wn_a" in out[0].reason
    out = decide(cluster(), [], [job(1)], [], History(join_failures={"wn_a": 4}))
    assert actions(out) == [("power_on", "wn_b")]
    assert out[0].reason.endswith("(wn_a given up)")


def test_a_mixed_node_is_never_powered_off():
    busy = up(1, lrms="busy", free=1, idle=0.0)  # MIXED: 1 of 2 CPUs allocated
    assert decide(cluster(cpus=2, idle_time=0), [busy], [], [], History()) == []


def test_idle_workers_are_powered_off_after_the_idle_time_only():
    fresh, old = up(1, idle=299.0), up(2, idle=301.0)
    out = decide(cluster(idle_time=300), [fresh, old], [], [], History())
    assert out == [
        Decision("power_off", "wn_a-2 idle 301 s > 300 s: powering off", "wn_a", 2, "wn_a-2")
    ]


def test_an_idle_worker_a_pending_job_can_use_stays():
    assert decide(cluster(idle_time=0), [up(1, idle=999.0)], [job(1)], [], History()) == []


def test_warm_spares_are_kept_and_made():
    out = decide(cluster(idle_time=0, warm_spares=1), [up(1, idle=999.0)], [], [], History())
    assert out == []
    out = decide(cluster(warm_spares=1), [], [], [], History())
    assert actions(out) == [("power_on", "wn_a")]
    assert "keeping 1 warm spare worker" in out[0].reason


def test_cooldown_delays_power_on_and_off():
    out = decide(cluster(cooldown=30), [], [job(1)], [], History(since_power_on=12.0))
    assert actions(out) == [("wait", None)]
    assert "cooldown 30 s (last power-on 12 s ago)" in out[0].reason
    out = decide(
        cluster(cooldown=30, idle_time=10), [up(1, idle=50.0)], [], [], History(since_power_off=5.0)
    )
    assert actions(out) == [("wait", None)]


def test_minimum_instances_are_kept():
    c = ElasticCluster(
        "ec", "slurm", "front", [WorkerPool("wn_a", 1, 3, 1, 400)], Knobs(idle_time=0)
    )
    assert decide(c, [up(1, idle=999.0)], [], [], History()) == []
    out = decide(c, [], [], [], History())
    assert actions(out) == [("power_on", "wn_a")] and "min_instances 1" in out[0].reason


def test_a_job_no_worker_can_run_is_reported_not_looped_on():
    out = decide(cluster(), [], [job(5, cpus=4)], [], History())
    assert actions(out) == [("unsatisfiable", None)]
    assert out[0].job == "5" and "asks for 4 CPUs per node" in out[0].reason
    out = decide(cluster(), [], [job(6, memory=4096)], [], History())
    assert out[0].action == "unsatisfiable"


def test_multi_node_jobs_and_bigger_workers():
    out = decide(cluster(cpus=2, max_booting=5), [], [job(1, cpus=4, nodes=2)], [], History())
    assert [d.pool for d in out] == ["wn_a", "wn_a"]
    out = decide(cluster(cpus=2), [], [job(1, cpus=1), job(2, cpus=1)], [], History())
    assert [d.pool for d in out] == ["wn_a"]  # two 1-CPU jobs share one 2-CPU worker


def test_other_partitions_are_not_our_demand():
    assert decide(cluster(), [], [job(1, partition="gpu")], [], History()) == []


def test_lost_workers_and_unknown_slurm_nodes():
    lost = up(1, lrms="down", free=0, down_for=DOWN_GRACE + 1)
    out = decide(cluster(), [lost], [], [("ghost", "idle"), ("busyghost", "busy")], History())
    assert actions(out) == [("power_off", "wn_a"), ("forget", None)]
    assert out[0].reason.startswith("Slurm lost wn_a-1") and out[1].name == "ghost"
    just_down = up(1, lrms="down", free=0, down_for=5.0)
    assert decide(cluster(), [just_down], [], [], History()) == []
