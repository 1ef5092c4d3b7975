"""A DAG run left deferred in the metastore, as deferring tasks leave it, for a real triggerer to
pick up (the reliability tests of the triggerer; Airflow 3.3's metastore layout)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def defer_run(dag_id: str, trigger_for: Callable[[str], Any]) -> int:
    """Parse the dags folder, create a manual run of ``dag_id`` and defer each of its task instances
    on ``trigger_for(task_id)``; returns the run's id."""
    from airflow import settings
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dagrun import DagRun, get_or_create_dagrun
    from airflow.models.trigger import Trigger
    from airflow.sdk import timezone
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    session = settings.Session()
    manager = DagBundlesManager()
    manager.sync_bundles_to_db(session=session)
    session.commit()
    bundle = next(b for b in manager.get_all_dag_bundles() if b.name == "dags-folder")
    if not bundle.is_initialized:
        bundle.initialize()
    bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, bundle.name, bundle.version)
    dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(bag.get_dag(dag_id)))
    now = timezone.utcnow()
    run = get_or_create_dagrun(
        dag=dag,
        start_date=now,
        logical_date=None,
        data_interval=None,
        run_after=now,
        run_id=DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=None, run_after=now),
        session=session,
        conf=None,
        triggered_by=DagRunTriggeredByType.TEST,
        triggering_user_name="msads_test",
    )
    for ti in run.get_task_instances(session=session):
        trigger = Trigger.from_object(trigger_for(ti.task_id))
        session.add(trigger)
        session.flush()
        ti.try_number = 1
        ti.state = TaskInstanceState.DEFERRED
        ti.trigger_id = trigger.id
        ti.next_method = "execute_complete"
    session.commit()
    run_id: int = run.id
    session.close()
    return run_id
