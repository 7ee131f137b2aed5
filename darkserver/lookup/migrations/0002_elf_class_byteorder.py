# The ELF class and byte order of each row: with e_machine they name the architecture
# (ppc64 against ppc64le, s390 against s390x). Rows imported before read 0 / NULL (unknown).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('lookup', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='elffile',
            name='elf_class',
            field=models.PositiveSmallIntegerField(default=0, help_text='32 or 64; 0 if unknown'),
        ),
        migrations.AddField(
            model_name='elffile',
            name='big_endian',
            field=models.BooleanField(help_text='byte order; NULL if unknown', null=True),
        ),
    ]
