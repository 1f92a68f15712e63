PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE IF NOT EXISTS "requests" (
   "id" INTEGER PRIMARY KEY,
   "repo" TEXT,
   "source" TEXT,
   "branches" TEXT,
   "requested_by" TEXT,
   "origin" TEXT,
   "channel" TEXT,
   "thread" TEXT,
   "summary" TEXT,
   "created_at" REAL
);
INSERT INTO requests VALUES(1,'demo','#1','["1.0", "1.1"]','ada','chat','console','2','Summary: 2 PRs opened.',1795319679.5133059025);
INSERT INTO requests VALUES(2,'demo','#3','["1.0"]','ada','chat','console','7','Summary: 1 PR opened.',1795319679.6767926215);
INSERT INTO requests VALUES(3,'demo','#4','["1.1"]','ada','chat','console','11','Summary: 0 PRs opened, 1 failed.',1795319679.8646202087);
INSERT INTO requests VALUES(4,'demo','#5','["1.1"]','ada','chat','console','17','Summary: 1 PR opened.',1795319680.0511503219);
CREATE TABLE IF NOT EXISTS "attempts" (
   "id" INTEGER PRIMARY KEY,
   "request_id" INTEGER REFERENCES "requests"("id"),
   "repo" TEXT,
   "source" TEXT,
   "branch" TEXT,
   "state" TEXT,
   "stage" TEXT,
   "failure_kind" TEXT,
   "reason" TEXT,
   "source_commits" TEXT,
   "pr_number" INTEGER,
   "result_branch" TEXT,
   "result_commit" TEXT,
   "worktree" TEXT,
   "owner" TEXT,
   "conflicts" TEXT,
   "prerequisites" TEXT,
   "warnings" TEXT,
   "needs_approval" INTEGER,
   "message" TEXT,
   "approval_message" TEXT,
   "pr_url" TEXT,
   "backport_pr" INTEGER,
   "ci" TEXT,
   "llm" TEXT,
   "created_at" REAL,
   "updated_at" REAL
);
INSERT INTO attempts VALUES(1,1,'demo','#1','1.0','pr_open','pr_open',NULL,NULL,'["44f36829f3d48bc368e392b1e6ca6c8c1fc20605"]',1,'backport/1-to-1.0','a35cf56a92dde2d089a3ccd2d33a8596d3fe7e92',NULL,'vm:24263',NULL,NULL,NULL,0,'3',NULL,'local://demo/pull/2',2,NULL,NULL,1795319679.5141131877,1795319679.6497354507);
INSERT INTO attempts VALUES(2,1,'demo','#1','1.1','pr_open','pr_open',NULL,NULL,'["44f36829f3d48bc368e392b1e6ca6c8c1fc20605"]',1,'backport/1-to-1.1','c2331f3b113080a942e2eefee6100d4929616e3d',NULL,'vm:24263',NULL,NULL,NULL,0,'4',NULL,'local://demo/pull/1',1,NULL,NULL,1795319679.5175044536,1795319679.6443157195);
INSERT INTO attempts VALUES(3,2,'demo','#3','1.0','pr_open','pr_open',NULL,NULL,'["9eea6b3ea046d0aaa8c5c07edd1fe54533ca66f7"]',3,'backport/3-to-1.0','0b81ec0c6f7a93d2ce6fd7f1ddc526ba1299777c',NULL,'vm:24263','[{"path": "app.py", "kind": "content", "hunks": 1, "resolved_by": ["context-moved"]}]',NULL,NULL,0,'8',NULL,'local://demo/pull/3',3,NULL,NULL,1795319679.6775503158,1795319679.8391871452);
INSERT INTO attempts VALUES(4,3,'demo','#4','1.1','failed','resolving','conflict','2b1ac623cb does not apply: conflicts in app.py (1 of 1 hunks unresolved, at line 6). Missing prerequisite: 6fe83e507c Add strict mode to limit (#2); 44f36829f3 Reject negative limits (#1) — backport them first','["2b1ac623cbbf4dae948307154a8be1f0129b90a7"]',4,NULL,NULL,NULL,'vm:24263','[{"path": "app.py", "kind": "content", "hunks": 1, "resolved_by": ["unresolved"]}]','[{"commit": "6fe83e507c27c6e901134db04f0397f3d5c7df0e", "subject": "Add strict mode to limit (#2)", "pr": 2, "paths": ["app.py"]}, {"commit": "44f36829f3d48bc368e392b1e6ca6c8c1fc20605", "subject": "Reject negative limits (#1)", "pr": 1, "paths": ["app.py"]}]',NULL,0,'12',NULL,NULL,NULL,NULL,NULL,1795319679.865250349,1795319680.0263571739);
INSERT INTO attempts VALUES(5,4,'demo','#5','1.1','pr_open','pr_open',NULL,NULL,'["41e23fb577b5a856edcf1a7929894a298a59f311"]',5,'backport/5-to-1.1','31294cf4832623ae6dbe61cedd734f72ec431f5c',NULL,'vm:24263',NULL,NULL,'["the source is not labelled as a fix (enhancement; fix labels: bug, security, critical)"]',1,'18','19','local://demo/pull/4',4,NULL,NULL,1795319680.0518345832,1795319680.1647257805);
CREATE TABLE IF NOT EXISTS "events" (
   "id" INTEGER PRIMARY KEY,
   "attempt_id" INTEGER REFERENCES "attempts"("id"),
   "at" REAL,
   "state" TEXT,
   "detail" TEXT
);
INSERT INTO events VALUES(1,1,1795319679.5148236752,'requested','{}');
INSERT INTO events VALUES(2,1,1795319679.5170979499,'queued','{}');
INSERT INTO events VALUES(3,2,1795319679.5180120468,'requested','{}');
INSERT INTO events VALUES(4,2,1795319679.5197527407,'queued','{}');
INSERT INTO events VALUES(5,2,1795319679.534403324,'picking','{"target": "refs/remotes/origin/1.1"}');
INSERT INTO events VALUES(6,1,1795319679.5372924804,'picking','{"target": "refs/remotes/origin/1.0"}');
INSERT INTO events VALUES(7,2,1795319679.5942761897,'picking','{"picked": "in memory", "commits": ["44f36829f3d48bc368e392b1e6ca6c8c1fc20605"]}');
INSERT INTO events VALUES(8,2,1795319679.5983862876,'ready','{"result_branch": "backport/1-to-1.1", "result_commit": "c2331f3b113080a942e2eefee6100d4929616e3d", "base_commit": "3d82ef86d590b849b81574ab3c55f6f142e4deb8"}');
INSERT INTO events VALUES(9,2,1795319679.6022391319,'opening_pr','{}');
INSERT INTO events VALUES(10,1,1795319679.6030697822,'picking','{"picked": "in memory", "commits": ["44f36829f3d48bc368e392b1e6ca6c8c1fc20605"]}');
INSERT INTO events VALUES(11,1,1795319679.6095581054,'ready','{"result_branch": "backport/1-to-1.0", "result_commit": "a35cf56a92dde2d089a3ccd2d33a8596d3fe7e92", "base_commit": "2abcf60bd9f9e29e794a637678cc5887a09f3d39"}');
INSERT INTO events VALUES(12,1,1795319679.6149070262,'opening_pr','{}');
INSERT INTO events VALUES(13,2,1795319679.6453492641,'pr_open','{"pr": 1, "url": "local://demo/pull/1", "reused": false}');
INSERT INTO events VALUES(14,1,1795319679.6504385471,'pr_open','{"pr": 2, "url": "local://demo/pull/2", "reused": false}');
INSERT INTO events VALUES(15,3,1795319679.6782386302,'requested','{}');
INSERT INTO events VALUES(16,3,1795319679.6799960137,'queued','{}');
INSERT INTO events VALUES(17,3,1795319679.6941123009,'picking','{"target": "refs/remotes/origin/1.0"}');
INSERT INTO events VALUES(18,3,1795319679.7635030746,'conflicted','{"commit": "9eea6b3ea046d0aaa8c5c07edd1fe54533ca66f7", "paths": ["app.py"]}');
INSERT INTO events VALUES(19,3,1795319679.7652390002,'resolving','{"commit": "9eea6b3ea046d0aaa8c5c07edd1fe54533ca66f7"}');
INSERT INTO events VALUES(20,3,1795319679.7772402763,'picking','{"resolved": [{"path": "app.py", "kind": "content", "hunks": 1, "resolved_by": ["context-moved"]}]}');
INSERT INTO events VALUES(21,3,1795319679.8032443523,'ready','{"result_branch": "backport/3-to-1.0", "result_commit": "0b81ec0c6f7a93d2ce6fd7f1ddc526ba1299777c", "base_commit": "2abcf60bd9f9e29e794a637678cc5887a09f3d39"}');
INSERT INTO events VALUES(22,3,1795319679.8057761192,'opening_pr','{}');
INSERT INTO events VALUES(23,3,1795319679.8400797843,'pr_open','{"pr": 3, "url": "local://demo/pull/3", "reused": false}');
INSERT INTO events VALUES(24,4,1795319679.8658547401,'requested','{}');
INSERT INTO events VALUES(25,4,1795319679.8676507473,'queued','{}');
INSERT INTO events VALUES(26,4,1795319679.8816330432,'picking','{"target": "refs/remotes/origin/1.1"}');
INSERT INTO events VALUES(27,4,1795319679.949328661,'conflicted','{"commit": "2b1ac623cbbf4dae948307154a8be1f0129b90a7", "paths": ["app.py"]}');
INSERT INTO events VALUES(28,4,1795319679.9507696628,'resolving','{"commit": "2b1ac623cbbf4dae948307154a8be1f0129b90a7"}');
INSERT INTO events VALUES(29,4,1795319680.0271210671,'failed','{"stage": "resolving", "kind": "conflict", "reason": "2b1ac623cb does not apply: conflicts in app.py (1 of 1 hunks unresolved, at line 6). Missing prerequisite: 6fe83e507c Add strict mode to limit (#2); 44f36829f3 Reject negative limits (#1) \u2014 backport them first"}');
INSERT INTO events VALUES(30,5,1795319680.0523552894,'requested','{}');
INSERT INTO events VALUES(31,5,1795319680.054195404,'queued','{}');
INSERT INTO events VALUES(32,5,1795319680.0660324096,'picking','{"target": "refs/remotes/origin/1.1"}');
INSERT INTO events VALUES(33,5,1795319680.0974943638,'picking','{"needs_approval": "the source is not labelled as a fix (enhancement; fix labels: bug, security, critical)"}');
INSERT INTO events VALUES(34,5,1795319680.1192791462,'picking','{"picked": "in memory", "commits": ["41e23fb577b5a856edcf1a7929894a298a59f311"]}');
INSERT INTO events VALUES(35,5,1795319680.1230413914,'ready','{"result_branch": "backport/5-to-1.1", "result_commit": "31294cf4832623ae6dbe61cedd734f72ec431f5c", "base_commit": "3d82ef86d590b849b81574ab3c55f6f142e4deb8"}');
INSERT INTO events VALUES(36,5,1795319680.1253411769,'awaiting_approval','{"why": ["the source is not labelled as a fix (enhancement; fix labels: bug, security, critical)"]}');
INSERT INTO events VALUES(37,5,1795319680.1290111541,'awaiting_approval','{"approved_by": "ada"}');
INSERT INTO events VALUES(38,5,1795319680.1299803256,'ready','{"approved_by": "ada"}');
INSERT INTO events VALUES(39,5,1795319680.131892681,'opening_pr','{}');
INSERT INTO events VALUES(40,5,1795319680.165318489,'pr_open','{"pr": 4, "url": "local://demo/pull/4", "reused": false}');
CREATE TABLE IF NOT EXISTS "hunks" (
   "id" INTEGER PRIMARY KEY,
   "attempt_id" INTEGER REFERENCES "attempts"("id"),
   "path" TEXT,
   "hunk" INTEGER,
   "resolved_by" TEXT,
   "detail" TEXT
);
INSERT INTO hunks VALUES(1,3,'app.py',0,'context-moved','{"kind": "content", "line": 2, "ours": "    items = text.split(\";\")\n    return [item.strip() for item in items]\n", "base": "    items = text.split(\",\")\n    return [item.strip() for item in items]\n", "theirs": "    items = text.split(\",\")\n    return [item.strip() for item in items if item]\n", "resolution": "    items = text.split(\";\")\n    return [item.strip() for item in items if item]\n"}');
INSERT INTO hunks VALUES(2,4,'app.py',0,'unresolved','{"kind": "content", "note": "no deterministic rule applies (no LLM configured)", "line": 6, "ours": "def limit(values, n):\n", "base": "def limit(values, n, *, strict=False):\n    if n < 0:\n        raise ValueError(n)\n", "theirs": "def limit(values, n, *, strict=False):\n    if n < 0 or (strict and n == 0):\n        raise ValueError(n)\n"}');
CREATE TABLE IF NOT EXISTS "digests" (
   "id" INTEGER PRIMARY KEY,
   "repo" TEXT,
   "at" REAL,
   "head" TEXT,
   "channel" TEXT,
   "message" TEXT,
   "candidates" INTEGER
);
INSERT INTO digests VALUES(1,'demo',1795319684.529936552,'abc','console','40',1);
CREATE TABLE IF NOT EXISTS "candidates" (
   "message" TEXT PRIMARY KEY,
   "repo" TEXT,
   "key" TEXT,
   "commit" TEXT,
   "branches" TEXT,
   "security" INTEGER,
   "channel" TEXT,
   "thread" TEXT,
   "at" REAL
);
INSERT INTO candidates VALUES('41','demo','#9','abc','["1.0"]',1,'console','40',1795319684.5303735733);
CREATE TABLE IF NOT EXISTS "dismissals" (
   "repo" TEXT,
   "key" TEXT,
   "by" TEXT,
   "at" REAL,
   PRIMARY KEY ("repo", "key")
);
INSERT INTO dismissals VALUES('demo','#8','ada',1795319684.5308523177);
CREATE TABLE IF NOT EXISTS "batch_items" (
   "id" INTEGER PRIMARY KEY,
   "repo" TEXT,
   "branch" TEXT,
   "key" TEXT,
   "state" TEXT,
   "reason" TEXT,
   "added_by" TEXT,
   "at" REAL
);
INSERT INTO batch_items VALUES(1,'demo','1.0','#7','pending',NULL,'ada',1795319684.5313253402);
CREATE TABLE IF NOT EXISTS "local_prs" (
   "number" INTEGER PRIMARY KEY,
   "repo" TEXT,
   "title" TEXT,
   "body" TEXT,
   "labels" TEXT,
   "head" TEXT,
   "base" TEXT,
   "state" TEXT,
   "source" TEXT,
   "reviewers" TEXT,
   "created_at" REAL
);
INSERT INTO local_prs VALUES(1,'demo','[Backport 1.1] Reject negative limits',replace('Backport of #1 (Reject negative limits) to `1.1`.\n\n**Commits picked** (with `git cherry-pick -x`):\n- 44f36829f3 Reject negative limits (#1)\n\nNo conflicts: the fix applied cleanly.\n\n**Verification:** no build or test commands are configured for this repository.\n\nThe backport''s patch is identical to the original.\n\nRequested by ada; opened by backportbot.','\n',char(10)),'["backport"]','backport/1-to-1.1','1.1','open','#1','["Demo Maintainer"]',1795319679.6422576904);
INSERT INTO local_prs VALUES(2,'demo','[Backport 1.0] Reject negative limits',replace('Backport of #1 (Reject negative limits) to `1.0`.\n\n**Commits picked** (with `git cherry-pick -x`):\n- 44f36829f3 Reject negative limits (#1)\n\nNo conflicts: the fix applied cleanly.\n\n**Verification:** no build or test commands are configured for this repository.\n\nThe backport''s patch is identical to the original.\n\nRequested by ada; opened by backportbot.','\n',char(10)),'["backport"]','backport/1-to-1.0','1.0','open','#1','["Demo Maintainer"]',1795319679.6490230559);
INSERT INTO local_prs VALUES(3,'demo','[Backport 1.0] Drop empty items when parsing',replace('Backport of #3 (Drop empty items when parsing) to `1.0`.\n\n**Commits picked** (with `git cherry-pick -x`):\n- 9eea6b3ea0 Drop empty items when parsing (#3)\n\n**Conflicts and how they were resolved:**\n- `app.py`, hunk at line 2: context-moved\n\n**Verification:** no build or test commands are configured for this repository.\n\n**Difference from the original patch:**\n```diff\n--- original patch\n+++ backport\n@@ -4,8 +4,8 @@\n @@\n  def parse(text):\n-     items = text.split(",")\n+     items = text.split(";")\n -    return [item.strip() for item in items]\n +    return [item.strip() for item in items if item]\n  \n  \n- def limit(values, n, *, strict=False):\n+ def limit(values, n):\n```\n\nRequested by ada; opened by backportbot.','\n',char(10)),'["backport"]','backport/3-to-1.0','1.0','open','#3','["Demo Maintainer"]',1795319679.838133812);
INSERT INTO local_prs VALUES(4,'demo','[Backport 1.1] Add a count helper',replace('Backport of #5 (Add a count helper) to `1.1`.\n\n**Commits picked** (with `git cherry-pick -x`):\n- 41e23fb577 Add a count helper (#5)\n\nNo conflicts: the fix applied cleanly.\n\n**Verification:** no build or test commands are configured for this repository.\n**Check:** the source is not labelled as a fix (enhancement; fix labels: bug, security, critical)\n\n**Difference from the original patch:**\n```diff\n--- original patch\n+++ backport\n@@ -9,3 +9,3 @@\n  def parse(text):\n      items = text.split(",")\n-     return [item.strip() for item in items if item]\n+     return [item.strip() for item in items]\n```\n\nRequested by ada; opened by backportbot.','\n',char(10)),'["backport"]','backport/5-to-1.1','1.1','open','#5','["Demo Maintainer"]',1795319680.1636562346);
CREATE TABLE IF NOT EXISTS "slack_events" (
   "id" TEXT PRIMARY KEY,
   "at" REAL
);
INSERT INTO slack_events VALUES('Ev01',1700000000.0);
CREATE TABLE IF NOT EXISTS "deliveries" (
   "id" TEXT PRIMARY KEY,
   "event" TEXT,
   "at" REAL
);
INSERT INTO deliveries VALUES('d-1','pull_request',1700000001.0);
CREATE INDEX "idx_attempts_repo_source_branch"
    ON "attempts" ("repo", "source", "branch");
CREATE INDEX "idx_events_attempt_id"
    ON "events" ("attempt_id");
CREATE INDEX "idx_hunks_attempt_id"
    ON "hunks" ("attempt_id");
COMMIT;
