# Users and the ADMIN privilege; the backup family needs it.

CREATE USER alice
----
ok

CREATE USER 'bob'@'%' IDENTIFIED BY 'secret'
----
ok

CREATE USER alice
----
error: Operation CREATE USER failed for 'alice': user already exists

CREATE USER IF NOT EXISTS alice
----
ok

SHOW GRANTS
----
UserIdentity,Catalog,Grants
'root'@'%',default_catalog,GRANT ADMIN TO 'root'@'%'

CREATE DATABASE d; CREATE TABLE d.t (k INT)
----
ok

connect nobody
----
error: Unknown user 'nobody'

connect alice
----
ok

SHOW GRANTS
----
UserIdentity,Catalog,Grants
'alice'@'%',default_catalog,

INSERT INTO d.t VALUES (1); SELECT * FROM d.t
----
k
1

CREATE USER carol
----
error: Access denied; you need (at least one of) the ADMIN privilege(s) for this operation

GRANT ADMIN TO alice
----
error: Access denied; you need (at least one of) the ADMIN privilege(s) for this operation

CREATE REPOSITORY repo WITH BROKER ON LOCATION "file:///tmp/repo"
----
error: Access denied; you need (at least one of) the ADMIN privilege(s) for this operation

BACKUP SNAPSHOT d.s1 TO repo
----
error: Access denied; you need (at least one of) the ADMIN privilege(s)

RESTORE SNAPSHOT d.s1 FROM repo
----
error: Access denied; you need (at least one of) the ADMIN privilege(s)

CANCEL BACKUP FROM d
----
error: Access denied; you need (at least one of) the ADMIN privilege(s)

DROP SNAPSHOT s1 ON repo
----
error: Access denied; you need (at least one of) the ADMIN privilege(s)

VERIFY SNAPSHOT s1 ON repo
----
error: Access denied; you need (at least one of) the ADMIN privilege(s)

SHOW SNAPSHOT ON repo
----
error: Access denied; you need (at least one of) the ADMIN privilege(s)

DROP REPOSITORY repo
----
error: Access denied; you need (at least one of) the ADMIN privilege(s)

SHOW REPOSITORIES
----
error: Access denied; you need (at least one of) the ADMIN privilege(s)

SHOW BACKUP FROM d
----
JobId,SnapshotName,DbName,State,BackupObjs,CreateTime,SnapshotFinishedTime,UploadFinishedTime,FinishedTime,UnfinishedTasks,Progress,TaskErrMsg,Status,Timeout

connect root
----
ok

GRANT ADMIN TO alice
----
ok

GRANT superpowers TO alice
----
error: Role 'superpowers' does not exist

GRANT ADMIN TO nobody
----
error: Unknown user 'nobody'

SHOW GRANTS FOR alice
----
UserIdentity,Catalog,Grants
'alice'@'%',default_catalog,GRANT ADMIN TO 'alice'@'%'

connect alice
----
ok

CREATE USER carol
----
ok

BACKUP SNAPSHOT d.s1 TO repo
----
error: Repository [repo] does not exist

SHOW REPOSITORIES
----
RepoId,RepoName,CreateTime,IsReadOnly,Location,Broker,ErrMsg

REVOKE ADMIN FROM alice
----
ok

BACKUP SNAPSHOT d.s1 TO repo
----
error: Access denied; you need (at least one of) the ADMIN privilege(s)

connect root
----
ok

REVOKE ADMIN FROM root
----
error: root always holds ADMIN

DROP USER root
----
error: the root user cannot be dropped

DROP USER carol
----
ok

DROP USER carol
----
error: Unknown user 'carol'

DROP USER IF EXISTS carol
----
ok

connect carol
----
error: Unknown user 'carol'
