"""A sensor evaluated in this process tick after tick, as the daemon evaluates it: its cursor
carried from one tick to the next, the dynamic partitions it requests added to the instance."""

import dagster as dg


class SensorTicks:
    def __init__(
        self,
        sensor: dg.SensorDefinition,
        instance: dg.DagsterInstance,
        resources: dict,
        definitions: dg.Definitions | None = None,
    ):
        self.sensor, self.instance, self.resources, self.definitions = sensor, instance, resources, definitions
        self.cursor: str | None = None

    def tick(self) -> dg.SensorResult:
        with dg.build_sensor_context(
            cursor=self.cursor,
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            resources=self.resources,
            definitions=self.definitions,
        ) as context:
            result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        for request in result.dynamic_partitions_requests or ():
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return result
