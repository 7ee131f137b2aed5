-- Darkserver schema for MySQL / MariaDB, equal to what `darkserver migrate` creates
-- (tests/darkserver/test_createtable.py proves it on MariaDB). Apply by hand with:
--   mysql -u admin -p -D darkserver < /usr/share/darkserver/createtable.sql
-- then grant the web user SELECT only (see README, "MySQL deployment").

CREATE TABLE `lookup_build` (
  `id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY,
  `instance` varchar(64) NOT NULL,
  `koji_build_id` bigint NULL,
  `name` varchar(200) NOT NULL,
  `epoch` integer NULL,
  `version` varchar(128) NOT NULL,
  `release` varchar(128) NOT NULL,
  `distro` varchar(32) NOT NULL,
  CONSTRAINT `build_nvr_unique` UNIQUE (`instance`, `name`, `version`, `release`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- 4-byte package ids: a package id is in every ELF row and its index.
CREATE TABLE `lookup_package` (
  `id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY,
  `kind` varchar(8) NOT NULL,
  `nvra` varchar(255) NOT NULL UNIQUE,
  `name` varchar(200) NOT NULL,
  `epoch` integer NULL,
  `version` varchar(128) NOT NULL,
  `release` varchar(128) NOT NULL,
  `arch` varchar(32) NOT NULL,
  `filename` varchar(255) NOT NULL,
  `size` bigint NOT NULL,
  `sha256` varchar(64) NOT NULL,
  `sigmd5` varchar(32) NOT NULL,
  `url` varchar(1024) NOT NULL,
  `koji_rpm_id` bigint NULL,
  `elf_files` integer NOT NULL,
  `without_build_id` integer NOT NULL,
  `imported_at` datetime(6) NOT NULL,
  `build_id` bigint NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- An install path's text, stored once per package name (scope: the name's UTF-8 bytes) for all
-- the builds of that name; path_key is the first 16 bytes of SHA-256(path). The two `.build-id`
-- debug paths are templates (a NUL where the build-id goes) of scope '' shared by every package.
CREATE TABLE `lookup_path` (
  `id` integer AUTO_INCREMENT NOT NULL PRIMARY KEY,
  `scope` varbinary(800) NOT NULL,
  `path` longtext NOT NULL,
  `path_key` varbinary(16) NOT NULL,
  CONSTRAINT `path_key_scope_unique` UNIQUE (`path_key`, `scope`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- build_id is the raw GNU build-id (4..64 bytes). The primary key starts with it: InnoDB keeps a
-- build-id's rows together and a lookup is one range read. No id, no path text: about 105 bytes
-- a row with its index at 10^8 rows. package_id has no foreign-key constraint (it would need an
-- index of its own): the importer deletes a package's rows itself. elf_class (32/64, 0 unknown)
-- and big_endian (NULL unknown) are the ELF header's EI_CLASS and EI_DATA.
CREATE TABLE `lookup_elffile` (
  `build_id` varbinary(64) NOT NULL,
  `package_id` integer NOT NULL,
  `path_id` integer NOT NULL,
  `elf_type` smallint UNSIGNED NOT NULL,
  `machine` smallint UNSIGNED NOT NULL,
  `elf_class` smallint UNSIGNED NOT NULL,
  `big_endian` bool NULL,
  `debug` bool NOT NULL,
  `package_note` longtext NULL,
  PRIMARY KEY (`build_id`, `package_id`, `path_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Running totals for /api/v1/stats, kept by the importer in each package's transaction.
CREATE TABLE `lookup_counter` (
  `name` varchar(64) NOT NULL PRIMARY KEY,
  `value` bigint NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per import run (the audit trail `darkserver-import history` prints).
CREATE TABLE `lookup_importrun` (
  `id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY,
  `source` varchar(1024) NOT NULL,
  `kind` varchar(16) NOT NULL,
  `status` varchar(16) NOT NULL,
  `started_at` datetime(6) NOT NULL,
  `finished_at` datetime(6) NULL,
  `new` integer NOT NULL,
  `known` integer NOT NULL,
  `failed` integer NOT NULL,
  `bytes_read` bigint NOT NULL,
  `seconds` double precision NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE INDEX `package_name_idx` ON `lookup_package` (`name`);
-- A package's identity: the importer skips files and index entries whose checksum is here.
CREATE INDEX `package_sha256_idx` ON `lookup_package` (`sha256`);
CREATE INDEX `package_filename_idx` ON `lookup_package` (`filename`);
CREATE INDEX `importrun_started_idx` ON `lookup_importrun` (`started_at`);
CREATE INDEX `path_scope_idx` ON `lookup_path` (`scope`);
-- The path lookup, and a package's rows (through its name's paths).
CREATE INDEX `elf_path_package_idx` ON `lookup_elffile` (`path_id`, `package_id`);
CREATE INDEX `build_name_idx` ON `lookup_build` (`name`);
ALTER TABLE `lookup_package` ADD CONSTRAINT `lookup_package_build_id_96cd3748_fk_lookup_build_id`
  FOREIGN KEY (`build_id`) REFERENCES `lookup_build` (`id`);
ALTER TABLE `lookup_elffile` ADD CONSTRAINT `lookup_elffile_path_id_3be6cf0c_fk_lookup_path_id`
  FOREIGN KEY (`path_id`) REFERENCES `lookup_path` (`id`);

-- Record the migrations this file stands for, so `darkserver migrate` and the readiness check
-- see the schema as migrated.
CREATE TABLE IF NOT EXISTS `django_migrations` (
  `id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY,
  `app` varchar(255) NOT NULL,
  `name` varchar(255) NOT NULL,
  `applied` datetime(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO `django_migrations` (`app`, `name`, `applied`) VALUES ('lookup', '0001_initial', NOW(6)),
  ('lookup', '0002_elf_class_byteorder', NOW(6)),
  ('lookup', '0003_counters', NOW(6)),
  ('lookup', '0004_package_identity', NOW(6)),
  ('lookup', '0005_elf_rows_by_build_id', NOW(6));
