"""Gap 10: **the companion database stack's resources** (``infra/database.yaml``).

Upstream, moto's CloudFormation has no model for ``AWS::SecretsManager::Secret``,
``AWS::RDS::DBCluster``, ``AWS::RDS::DBProxy``, ``AWS::RDS::DBProxyTargetGroup`` and
``AWS::SecretsManager::SecretTargetAttachment``, and its ``AWS::RDS::DBInstance`` knows no
``aurora-postgresql`` engine. Here: models over moto's RDS and Secrets Manager APIs
(:data:`MODELS`). The attachment writes host, port, dbname and engine into the secret, as
Secrets Manager does, so the test reads the secret the functions would read. moto does not
resolve ``{{resolve:secretsmanager:...}}`` references: the cluster's master password is the
literal reference (nothing connects to the emulated cluster).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.rds.models import rds_backends
from moto.secretsmanager.models import secretsmanager_backends

from tests.support.moto_gaps.modelling import FromProperties


class _SimpleModel(FromProperties):
    """Shared plumbing of the models below: created from properties, unchanged by updates."""

    def __init__(
        self, resource_name: str, account_id: str, region: str, properties: dict[str, Any]
    ) -> None:
        self.name = re.sub(r"[^a-z0-9-]", "-", resource_name.lower())[:60]
        self.account_id, self.region = account_id, region
        self.properties = properties
        self.create()

    def create(self) -> None:
        raise NotImplementedError

    @property
    def physical_resource_id(self) -> str:
        return self.name


class _RdsCluster(_SimpleModel, CloudFormationModel):
    """``AWS::RDS::DBCluster`` over moto's ``create_db_cluster``; ``GetAtt Endpoint.*`` works."""

    resource_type = "AWS::RDS::DBCluster"

    def create(self) -> None:
        p = self.properties
        self.cluster = rds_backends[self.account_id][self.region].create_db_cluster(
            {
                "db_cluster_identifier": self.name,
                "engine": p["Engine"],
                "engine_version": p.get("EngineVersion"),
                "database_name": p.get("DatabaseName"),
                "master_username": p.get("MasterUsername"),
                "master_user_password": p.get("MasterUserPassword"),
                "db_subnet_group_name": p.get("DBSubnetGroupName"),
                "vpc_security_group_ids": p.get("VpcSecurityGroupIds"),
                "storage_encrypted": p.get("StorageEncrypted"),
                "deletion_protection": p.get("DeletionProtection"),
            }
        )

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Endpoint.Address", "Endpoint.Port", "DBClusterArn")

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return {
            "Endpoint.Address": self.cluster.endpoint,
            "Endpoint.Port": "5432",
            "DBClusterArn": self.cluster.db_cluster_arn,
        }[attribute_name]

    def delete(self, account_id: str, region_name: str) -> None:
        rds_backends[account_id][region_name].delete_db_cluster(cluster_identifier=self.name)


class _AuroraInstance(_SimpleModel, CloudFormationModel):
    """``AWS::RDS::DBInstance`` of an Aurora cluster: moto's model knows no ``aurora-postgresql``
    engine; the instance is recorded only (nothing in the test reads it)."""

    resource_type = "AWS::RDS::DBInstance"

    def create(self) -> None:
        assert self.properties.get("DBClusterIdentifier"), "only cluster instances are emulated"


class _RdsProxy(_SimpleModel, CloudFormationModel):
    """``AWS::RDS::DBProxy`` over moto's ``create_db_proxy``; ``GetAtt Endpoint`` works."""

    resource_type = "AWS::RDS::DBProxy"

    def create(self) -> None:
        p = self.properties
        self.name = str(p["DBProxyName"])
        self.proxy = rds_backends[self.account_id][self.region].create_db_proxy(
            db_proxy_name=self.name,
            engine_family=p["EngineFamily"],
            auth=p["Auth"],
            role_arn=p["RoleArn"],
            vpc_subnet_ids=p["VpcSubnetIds"],
            vpc_security_group_ids=p.get("VpcSecurityGroupIds"),
            require_tls=p.get("RequireTLS"),
            idle_client_timeout=None,
            debug_logging=None,
            tags=None,
        )

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Endpoint"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return str(self.proxy.endpoint)


class _RdsProxyTargets(_SimpleModel, CloudFormationModel):
    """``AWS::RDS::DBProxyTargetGroup``: registers the cluster with moto's proxy."""

    resource_type = "AWS::RDS::DBProxyTargetGroup"

    def create(self) -> None:
        p = self.properties
        rds_backends[self.account_id][self.region].register_db_proxy_targets(
            db_proxy_name=p["DBProxyName"],
            target_group_name=p["TargetGroupName"],
            db_cluster_identifiers=p.get("DBClusterIdentifiers", []),
            db_instance_identifiers=[],
        )


class _Secret(_SimpleModel, CloudFormationModel):
    """``AWS::SecretsManager::Secret`` with ``GenerateSecretString``; ``Ref`` is the full ARN."""

    resource_type = "AWS::SecretsManager::Secret"

    def create(self) -> None:
        p = self.properties
        secrets = secretsmanager_backends[self.account_id][self.region]
        value = p.get("SecretString")
        generate = p.get("GenerateSecretString")
        if generate:
            password = secrets.get_random_password(
                password_length=int(generate.get("PasswordLength", 32)),
                exclude_characters=generate.get("ExcludeCharacters", ""),
                exclude_numbers=False,
                exclude_punctuation=bool(generate.get("ExcludePunctuation")),
                exclude_uppercase=False,
                exclude_lowercase=False,
                include_space=False,
                require_each_included_type=True,
            )
            fields = json.loads(generate["SecretStringTemplate"])
            fields[generate["GenerateStringKey"]] = json.loads(password)["RandomPassword"]
            value = json.dumps(fields)
        created = secrets.create_secret(
            name=str(p.get("Name") or f"{self.name}-{uuid.uuid4().hex[:8]}"),
            secret_string=value,
            secret_binary=None,
            description=p.get("Description"),
            tags=None,
            kms_key_id=p.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        self.name = str(json.loads(created)["ARN"])

    def delete(self, account_id: str, region_name: str) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(self.name, None, True)


class _SecretTargetAttachment(_SimpleModel, CloudFormationModel):
    """``AWS::SecretsManager::SecretTargetAttachment``: host, port, dbname, engine to the secret."""

    resource_type = "AWS::SecretsManager::SecretTargetAttachment"

    def create(self) -> None:
        p = self.properties
        cluster = rds_backends[self.account_id][self.region].clusters[p["TargetId"]]
        secrets = secretsmanager_backends[self.account_id][self.region]
        secret_id = p["SecretId"]
        current = secrets.get_secret_value(secret_id, None, None)  # type: ignore[arg-type]
        value = json.loads(current["SecretString"])
        value.update(
            host=cluster.endpoint,
            port=5432,
            dbname=cluster.database_name,
            engine="postgres",
            dbClusterIdentifier=cluster.db_cluster_identifier,
        )
        secrets.put_secret_value(
            secret_id,
            json.dumps(value),
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            ["AWSCURRENT"],
        )


MODELS: tuple[type[CloudFormationModel], ...] = (
    _RdsCluster,
    _AuroraInstance,
    _RdsProxy,
    _RdsProxyTargets,
    _Secret,
    _SecretTargetAttachment,
)
